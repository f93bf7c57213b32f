export { seededRandom } from "../../controller/core/random.ts";

/** The seed of a randomized test: the one given to replay it (an environment variable's value), else a fresh one, which the test prints. */
export function propertySeed(replay: string | undefined): number {
  return replay ? Number(replay) : Math.floor(Math.random() * 2 ** 31);
}
