/* Citoyens service worker.
 * - precaches the static shell (CSS, JS, icons under content-hashed URLs, offline page);
 * - its cache is named from those hashes: after a deploy this script differs, the browser
 *   installs it, and its activation deletes the old caches;
 * - pages: network first, the offline page when the network is gone;
 * - never stores a page: personal data stays on the server;
 * - clears its caches when told so at logout. */
const CACHE = {{ cache_name|tojson }};
const PRECACHE = {{ precache|tojson }};
const OFFLINE_URL = PRECACHE[0];

function precache() {
  // The hashed files never change (the HTTP cache may give them); the offline page does,
  // so it comes from the server, never from an HTTP cache older than this deploy.
  const requests = PRECACHE.map((url) => new Request(url, { cache: url === OFFLINE_URL ? "reload" : "default" }));
  return caches.open(CACHE).then((cache) => cache.addAll(requests));
}

self.addEventListener("install", (event) => {
  event.waitUntil(precache().then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim())
  );
});

self.addEventListener("message", (event) => {
  // At logout: drop every cache, then put back the public shell alone.
  if (event.data === "clear-caches") {
    event.waitUntil(
      caches.keys()
        .then((keys) => Promise.all(keys.map((key) => caches.delete(key))))
        .then(precache)
    );
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (request.mode === "navigate") {
    event.respondWith(fetch(request).catch(() => caches.match(OFFLINE_URL)));
    return;
  }
  if (PRECACHE.includes(url.pathname)) {
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  }
});
