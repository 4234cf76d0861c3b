// The connect page's part of the connect widget (sdk/js): post the flow's outcome to the page that
// opened this window, at the one origin the gateway checked for it, then close the window.
(function () {
  "use strict";
  var element = document.getElementById("widget-outcome");
  if (!element || !window.opener) {
    return;
  }
  var data = element.dataset;
  window.opener.postMessage(
    {
      type: "grantline.connect.outcome",
      status: data.status,
      provider: data.provider || null,
      connection_id: data.connectionId || null,
      error: data.error || null
    },
    data.origin
  );
  window.setTimeout(function () { window.close(); }, 50);
})();
