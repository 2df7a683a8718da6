// Fills prefecture, city and district from the postal code as it is typed (the server's /postal/ data).
// Without this script the "find address" button does the same by posting the form.
(function () {
  "use strict";
  var code = document.querySelector("[data-postal-lookup]");
  if (!code || !window.fetch) { return; }
  var pref = document.getElementById("prefecture"), city = document.getElementById("city");
  var district = document.getElementById("district"), button = document.getElementById("lookup");
  if (button) { button.hidden = true; }  // Enter now submits the registration itself
  var asked = "";
  function fill(found) {
    pref.value = found ? found.prefecture : "";
    city.value = found ? found.city : "";
    var chosen = district.value, names = found && found.districts.length ? found.districts : [""];
    district.textContent = "";
    names.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      option.textContent = name || "—";
      option.selected = name === chosen;
      district.appendChild(option);
    });
  }
  function lookup() {
    var digits = code.value.normalize("NFKC").replace(/[^0-9]/g, "");
    if (digits.length !== 7) { if (asked) { asked = ""; fill(null); } return; }
    if (digits === asked) { return; }
    asked = digits;
    fetch(code.getAttribute("data-postal-lookup") + digits, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (found) { if (asked === digits) { fill(found); } })
      .catch(function () { asked = ""; });
  }
  code.addEventListener("input", lookup);
  lookup();
})();
