// The print button of report pages (no inline script: CSP allows only our own files).
document.querySelectorAll(".print-button").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
