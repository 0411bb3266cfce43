// uPlot (github.com/leeoniya/uPlot, MIT), the chart library `olmo report` inlines into its page:
// the minified browser build, its stylesheet and its license, imported as text from the npm package.
// Run from a checkout, Bun reads them from node_modules; `bun build --compile` embeds them in the
// binary like any other import, so the compiled `olmo report` needs no node_modules either.
import uplotScript from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotStyle from "uplot/dist/uPlot.min.css" with { type: "text" };
import uplotLicense from "uplot/LICENSE" with { type: "text" };
import uplotPackage from "uplot/package.json";

export const UPLOT = {
  script: uplotScript,
  style: uplotStyle,
  license: uplotLicense.trim(),
  version: uplotPackage.version,
  homepage: uplotPackage.homepage,
};
