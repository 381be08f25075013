export { disposeRouting, type Routing } from "./routing.js";
