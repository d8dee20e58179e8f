import { runCold } from "../cases/cold.js";

await runCold(console.log);
