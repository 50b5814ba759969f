/* The tool form's "Settings" editor: a django-jsonform form whose schema follows the "Kind" select.
   Loaded as a static file (the admin's Content-Security-Policy allows no inline script). */
(function () {
  "use strict";

  function start(textarea) {
    var config = JSON.parse(textarea.dataset.mcpKindConfig);
    var schemas = JSON.parse(textarea.dataset.kindSchemas);
    var container = textarea.parentElement.querySelector("[data-mcp-kind-config-container]");
    var emptyNote = textarea.parentElement.querySelector(".mcp-kind-config-empty");
    var kindSelect = textarea.form ? textarea.form.querySelector("select[name=kind]") : null;
    container.id = textarea.id + "_jsonform";
    config.data = JSON.parse(config.data);
    if (config.data === null || typeof config.data !== "object") config.data = {};
    config.containerId = container.id;
    config.dataInputId = textarea.id;

    function show(kind) {
      var known = Boolean(kind && schemas[kind]);
      container.hidden = !known;
      emptyNote.hidden = Boolean(kind);
      return known;
    }

    var currentKind = kindSelect ? kindSelect.value : "";
    if (currentKind && schemas[currentKind]) config.schema = schemas[currentKind];
    show(currentKind);
    var form = reactJsonForm.createForm(config);
    form.render();
    textarea.value = JSON.stringify(config.data);

    if (kindSelect) {
      kindSelect.addEventListener("change", function () {
        var kind = kindSelect.value;
        if (!show(kind)) { textarea.value = "{}"; return; }
        form.update({schema: schemas[kind], data: {}, errorMap: {}});
      });
    }
  }

  function init() {
    document.querySelectorAll("textarea[data-mcp-kind-config]").forEach(start);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
