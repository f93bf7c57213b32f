export { seededRandom } from "../../controller/core/random.ts";
