// The files `olmo report` inlines into its page, imported `with { type: "text" }`: Bun reads them
// from node_modules when run from a checkout and embeds them in the compiled binary.
declare module "uplot/dist/uPlot.iife.min.js" {
  const text: string;
  export default text;
}
declare module "uplot/dist/uPlot.min.css" {
  const text: string;
  export default text;
}
declare module "uplot/LICENSE" {
  const text: string;
  export default text;
}
