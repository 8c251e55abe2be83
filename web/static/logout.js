// Single Logout. On the progress page: wait until every vendor's frame has
// answered, or at most data-wait seconds, then continue. In a vendor's
// frame, once the bridge has its answer: tell the page. Without scripts
// the page continues by its refresh after data-wait seconds.
(function () {
  var answer = document.body && document.body.getAttribute("data-logout-answer");
  if (answer !== null && answer !== undefined && window.parent !== window) {
    window.parent.postMessage("skolbro-logout-answer", window.location.origin);
    return;
  }
  var form = document.getElementById("next");
  if (!form) return;
  var left = parseInt(form.getAttribute("data-frames"), 10) || 0;
  var wait = (parseInt(form.getAttribute("data-wait"), 10) || 5) * 1000;
  var sent = false;
  function go() {
    if (!sent) {
      sent = true;
      form.submit();
    }
  }
  function one() {
    left--;
    if (left <= 0) go();
  }
  window.addEventListener("message", function (e) {
    if (e.origin === window.location.origin && e.data === "skolbro-logout-answer") one();
  });
  // An OIDC vendor's front-channel page sends no answer: its loading is
  // all there is to wait for.
  var frames = document.querySelectorAll("iframe[data-kind=front]");
  for (var i = 0; i < frames.length; i++) frames[i].addEventListener("load", one);
  setTimeout(go, wait);
  if (left <= 0) go();
})();
