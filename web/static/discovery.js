// Filters the discovery list as you type. The page works without it: the
// list is plain links.
(function () {
  var input = document.getElementById("filter");
  var list = document.getElementById("choices");
  var none = document.getElementById("none");
  if (!input || !list) return;
  input.parentNode.hidden = false;
  input.addEventListener("input", function () {
    var q = input.value.trim().toLowerCase();
    var shown = 0;
    var items = list.getElementsByTagName("li");
    for (var i = 0; i < items.length; i++) {
      var hit = items[i].getAttribute("data-name").indexOf(q) >= 0;
      items[i].hidden = !hit;
      if (hit) shown++;
    }
    none.hidden = shown > 0;
  });
})();
