/* Citoyens: photos made lighter in the browser before they are sent, and the sending shown.
 *
 * Loaded on the pages whose forms carry `data-upload`. Before sending, a photo (JPEG, PNG,
 * or HEIC when this browser can decode it) whose long side passes MAX_SIDE is redrawn at
 * that size as a JPEG: a 3.4 MB phone photo becomes a few hundred kilobytes. The original
 * is sent when the browser cannot decode it or when the JPEG is not smaller.
 * htmx forms (the documents page) show a <progress> and the percentage sent, announced to
 * screen readers; the others are posted as usual once the photo is ready.
 * Without this file, or without JavaScript, every form posts its original file: the server
 * checks and re-encodes each file either way (citoyens/documents/uploads.py). */
(function () {
  "use strict";

  var MAX_SIDE = 2000;
  var QUALITY = 0.85;
  var IMAGE_TYPES = /^image\/(jpeg|png|heic|heif)$/i;
  var IMAGE_NAMES = /\.(jpe?g|png|heic|heif)$/i; // HEIC often comes without a type
  var ANNOUNCE_STEP = 10; // percent: screen readers hear every tenth, not every event

  function isImage(file) {
    return IMAGE_TYPES.test(file.type) || (!file.type && IMAGE_NAMES.test(file.name));
  }

  // The picture, decoded by the browser; rejected when it cannot read the format.
  function decode(file) {
    var viaImg = function () {
      return new Promise(function (resolve, reject) {
        var url = URL.createObjectURL(file);
        var img = new Image();
        img.onload = function () { resolve({ source: img, width: img.naturalWidth, height: img.naturalHeight, done: function () { URL.revokeObjectURL(url); } }); };
        img.onerror = function () { URL.revokeObjectURL(url); reject(new Error("undecodable")); };
        img.src = url;
      });
    };
    if (!window.createImageBitmap) return viaImg();
    // createImageBitmap follows the photo's orientation tag (imageOrientation "from-image").
    return createImageBitmap(file).then(function (bitmap) {
      return { source: bitmap, width: bitmap.width, height: bitmap.height, done: function () { bitmap.close(); } };
    }, viaImg);
  }

  // The file to send: a smaller JPEG when that helps, else the original.
  function shrink(file) {
    var canvas = document.createElement("canvas");
    if (!isImage(file) || !canvas.toBlob) return Promise.resolve(file);
    return decode(file).then(function (image) {
      var scale = Math.min(1, MAX_SIDE / Math.max(image.width, image.height));
      canvas.width = Math.max(1, Math.round(image.width * scale));
      canvas.height = Math.max(1, Math.round(image.height * scale));
      var context = canvas.getContext("2d");
      context.fillStyle = "#fff"; // a transparent PNG on white, not on black
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image.source, 0, 0, canvas.width, canvas.height);
      image.done();
      return new Promise(function (resolve) { canvas.toBlob(resolve, "image/jpeg", QUALITY); });
    }).then(function (blob) {
      if (!blob || blob.size >= file.size) return file;
      var name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
      return new File([blob], name, { type: "image/jpeg", lastModified: file.lastModified });
    }).catch(function () { return file; });
  }

  // Put `file` in the input, in place of what the parent chose; false when this browser
  // cannot (then the original is sent).
  function replaceFile(input, file) {
    if (file === input.files[0]) return true;
    try {
      var transfer = new DataTransfer();
      transfer.items.add(file);
      input.files = transfer.files;
      return true;
    } catch (error) {
      return false;
    }
  }

  // The progress line of a form, created the first time (a live region must exist before
  // it speaks).
  function progressOf(form) {
    var box = form.querySelector(".upload-progress");
    if (box) return box;
    box = document.createElement("div");
    box.className = "upload-progress";
    box.hidden = true;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.setAttribute("aria-hidden", "true"); // the text below says the same, once per step
    var text = document.createElement("p");
    text.className = "upload-percent";
    text.setAttribute("role", "status");
    text.setAttribute("aria-live", "polite");
    box.appendChild(bar);
    box.appendChild(text);
    form.appendChild(box);
    return box;
  }

  function showProgress(form, percent, message) {
    var box = progressOf(form);
    var bar = box.querySelector("progress");
    var text = box.querySelector(".upload-percent");
    box.hidden = false;
    if (percent === null) {
      bar.removeAttribute("value"); // indeterminate: the photo is being prepared
    } else {
      bar.value = percent;
    }
    if (message !== undefined) {
      text.textContent = message;
    } else if (percent !== null && (percent === 100 || percent - (Number(text.dataset.percent) || 0) >= ANNOUNCE_STEP)) {
      text.dataset.percent = String(percent);
      text.textContent = "Envoi : " + percent + " %";
    }
  }

  function hideProgress(form) {
    var box = form.querySelector(".upload-progress");
    if (!box) return;
    box.hidden = true;
    box.querySelector(".upload-percent").textContent = "";
    delete box.querySelector(".upload-percent").dataset.percent;
  }

  // A new file chosen, or a new sending: the error of an earlier attempt goes.
  function clearErrors(form) {
    var errors = form.querySelectorAll(".error");
    Array.prototype.forEach.call(errors, function (error) {
      if (error.id) {
        Array.prototype.forEach.call(document.querySelectorAll("[aria-describedby~=\"" + error.id + "\"]"), function (input) {
          var ids = input.getAttribute("aria-describedby").split(/\s+/).filter(function (id) { return id !== error.id; });
          if (ids.length) input.setAttribute("aria-describedby", ids.join(" "));
          else input.removeAttribute("aria-describedby");
        });
      }
      error.remove();
    });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
      input.removeAttribute("aria-invalid");
    });
    Array.prototype.forEach.call(form.querySelectorAll(".has-error"), function (part) {
      part.classList.remove("has-error");
    });
    form.classList.remove("has-error");
    var network = document.getElementById("erreur-reseau");
    if (network) network.hidden = true;
  }

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches('form[data-upload] input[type="file"]')) return;
    clearErrors(input.form);
    hideProgress(input.form);
  });

  // Capture: runs before htmx's own listener on the form, which the first submit of a
  // photo must not reach (the shrunk photo is not ready yet).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-upload]")) return;
    clearErrors(form);
    if (form.dataset.uploadReady === "1") {
      delete form.dataset.uploadReady;
      if (!form.hasAttribute("data-hx-post")) showProgress(form, null, "Envoi en cours…");
      return;
    }
    var inputs = Array.prototype.filter.call(form.querySelectorAll('input[type="file"]'), function (input) {
      return input.files && input.files.length === 1 && isImage(input.files[0]);
    });
    if (!inputs.length) {
      if (!form.hasAttribute("data-hx-post") && form.querySelector('input[type="file"]')) showProgress(form, null, "Envoi en cours…");
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    var buttons = form.querySelectorAll("button");
    Array.prototype.forEach.call(buttons, function (button) { button.disabled = true; });
    showProgress(form, null, "Préparation de la photo…");
    Promise.all(inputs.map(function (input) {
      return shrink(input.files[0]).then(function (file) { replaceFile(input, file); });
    })).then(function () {
      Array.prototype.forEach.call(buttons, function (button) { button.disabled = false; });
      form.dataset.uploadReady = "1";
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    });
  }, true);

  // htmx sends the form: its upload's progress, shown and announced.
  document.addEventListener("htmx:beforeSend", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("form[data-upload]")) return;
    showProgress(form, 0, "Envoi : 0 %");
    event.detail.xhr.upload.addEventListener("progress", function (progress) {
      if (!progress.lengthComputable) return;
      var percent = Math.floor((progress.loaded / progress.total) * 100);
      showProgress(form, percent);
      if (percent === 100) showProgress(form, 100, "Envoi : 100 %. Vérification du fichier…");
    });
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.matches && form.matches("form[data-upload]") && form.isConnected) hideProgress(form);
  });
})();
