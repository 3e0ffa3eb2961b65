// Asks before anything irreversible: every form with data-confirm.
document.addEventListener("submit", function (e) {
  var form = e.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    e.preventDefault();
  }
});

// Typing a range or a time chooses the option it belongs to (the radio in the same label).
document.addEventListener("input", function (e) {
  var label = e.target.closest && e.target.closest("label");
  if (!label || e.target.type === "radio") return;
  var radio = label.querySelector('input[type="radio"]');
  if (radio) radio.checked = true;
});
