/* Citoyens: the little JavaScript the pages use. No inline scripts (CSP). */
(function () {
  "use strict";

  // htmx sends the CSRF token as a header on every request.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) event.detail.headers["X-CSRFToken"] = meta.content;
  });

  // An htmx request that fails swaps nothing: say why, in French, where everyone hears it.
  var FAILURES = {
    400: "Le formulaire a expiré. Rechargez la page puis recommencez.",
    403: "Vous n'avez pas accès à cette action.",
    404: "Cet élément n'existe plus. Rechargez la page.",
    413: "Le fichier dépasse 10 Mo. Choisissez un fichier plus léger ou une photo moins lourde.",
    429: "Trop de demandes. Patientez quelques minutes puis réessayez."
  };
  function showFailure(message) {
    var box = document.getElementById("erreur-reseau");
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
  }
  var OFFLINE = "Pas de connexion : vérifiez votre réseau puis réessayez.";

  // A day of the calendar ticked or unticked when the request failed (no network, error):
  // the checkbox goes back to the state the server last gave (its `checked` attribute), so
  // that it agrees with its card again, and the sticky announcement says so, in words.
  function restoreDay(elt, message) {
    if (!elt || !elt.matches('.rv-cell input[type="checkbox"]')) return false;
    elt.checked = elt.defaultChecked;
    var announce = document.getElementById("annonce-reservation");
    if (!announce) return false;
    var name = elt.closest(".rv-cell").querySelector(".rv-name");
    var day = elt.closest(".rv-day");
    var date = day ? day.querySelector(".rv-date") : null;
    var what = (name ? name.textContent.trim() : "Ce jour") +
      (date ? " du " + date.firstChild.textContent.trim().toLowerCase() : "");
    announce.classList.add("rv-announce-error");
    announce.textContent = message + " Rien n'a été enregistré : " + what + " reste " +
      (elt.defaultChecked ? "réservé" : "non réservé") + ".";
    return true;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var status = event.detail.xhr.status;
    var message = FAILURES[status] || "Un problème est survenu. Réessayez dans un instant.";
    if (!restoreDay(event.detail.elt, message)) showFailure(message);
  });
  document.addEventListener("htmx:sendError", function (event) {
    if (!restoreDay(event.detail.elt, OFFLINE)) showFailure(OFFLINE);
  });
  document.addEventListener("htmx:timeout", function (event) {
    if (!restoreDay(event.detail.elt, OFFLINE)) showFailure(OFFLINE);
  });
  document.addEventListener("htmx:beforeRequest", function () {
    var box = document.getElementById("erreur-reseau");
    if (box) box.hidden = true;
  });

  // A swap that took the focus away (its button was disabled or replaced) puts it back
  // in the swapped part: on the field in error, else on its heading.
  document.addEventListener("htmx:afterSettle", function (event) {
    var active = document.activeElement;
    if (active && active !== document.body) return;
    var target = event.detail.target;
    if (!target || !target.id) return;
    var part = document.getElementById(target.id);
    if (!part) return;
    var focus = part.querySelector("[aria-invalid=true]") || part.querySelector("[data-swap-focus]") ||
      part.querySelector("h2, h3, h4") || part;
    if (!focus.matches("input, select, textarea, button, a[href]")) focus.setAttribute("tabindex", "-1");
    focus.focus();
  });

  // "Afficher" / "Masquer" the password being typed.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-toggle-password]");
    if (!button) return;
    var input = document.getElementById(button.getAttribute("data-toggle-password"));
    var shown = input.type === "text";
    input.type = shown ? "password" : "text";
    button.textContent = shown ? "Afficher" : "Masquer";
    button.setAttribute("aria-pressed", String(!shown));
  });

  // A link to a part of the page folded in a closed <details> (a past week of the month)
  // opens it, so that the part is shown and scrolled to.
  function unfoldTarget() {
    var id = decodeURIComponent(window.location.hash.slice(1));
    var target = id && document.getElementById(id);
    var folded = target && target.closest("details:not([open])");
    if (!folded) return;
    folded.open = true;
    target.scrollIntoView();
  }
  window.addEventListener("hashchange", unfoldTarget);

  document.addEventListener("DOMContentLoaded", function () {
    unfoldTarget();
    // Move focus to an error summary so screen readers announce it.
    var summary = document.querySelector("[data-focus]");
    if (summary) summary.focus();
    else {
      // The message left by the previous action ("Paiement enregistré", "Réservé"…): the
      // focus goes to it, so that a screen reader reads it on arrival (a live region that
      // is already full when the page loads is not announced) and Tab goes on from there.
      var flashes = document.querySelector(".flashes");
      if (flashes && flashes.querySelector(".notice") && !document.querySelector("[autofocus]")) {
        flashes.setAttribute("tabindex", "-1");
        flashes.focus();
      }
    }

    if (!("serviceWorker" in navigator)) return;
    if (document.body.hasAttribute("data-clear-caches")) {
      if (navigator.serviceWorker.controller) {
        navigator.serviceWorker.controller.postMessage("clear-caches");
      } else if (window.caches) {
        caches.keys().then(function (keys) { keys.forEach(function (k) { caches.delete(k); }); });
      }
    }
    // After the page has loaded: the worker's install downloads the whole static shell,
    // which must not compete with the first visit's own requests.
    function register() {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () {});
    }
    if (document.readyState === "complete") register();
    else window.addEventListener("load", register);
  });
})();
