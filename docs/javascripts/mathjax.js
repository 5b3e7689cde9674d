// MathJax, shipped with the site (javascripts/mathjax/, from the django-static-mathjax package):
// no network needed. Lens pages: pymdownx.arithmatex wraps math in .arithmatex as \( \) and
// \[ \]. Demo pages (mkdocs-jupyter): markdown cells keep $ and $$ inside .jp-RenderedMarkdown.
window.MathJax = {
  tex: {inlineMath: [["\\(", "\\)"], ["$", "$"]], displayMath: [["\\[", "\\]"], ["$$", "$$"]],
        processEscapes: true, processEnvironments: true},
  svg: {fontCache: "global"},
  options: {ignoreHtmlClass: ".+", processHtmlClass: "arithmatex|jp-RenderedMarkdown"}
};
document$.subscribe(() => { MathJax.typesetPromise && MathJax.typesetPromise(); });
