// Runs one enrollment in its own process, for tests that kill it midway (as a crashed controller).
// stdin: { target: VpsTarget, desired: VpsDesiredState }; prints the result as JSON.
import { readFileSync } from "node:fs";
import { enrollVps, type VpsDesiredState } from "../../src/provider/enroll.ts";
import { connectVps, type VpsTarget } from "../../src/provider/ssh.ts";

const { target, desired } = JSON.parse(readFileSync(0, "utf8")) as { target: VpsTarget; desired: VpsDesiredState };
const session = await connectVps(target);
try {
  process.stdout.write(`${JSON.stringify(await enrollVps(session, desired))}\n`);
} finally {
  session.close();
}
