// The bench's command line: how long each measurement runs and how big it is. Defaults keep
// the whole run (four paths, three kinds of measurement each) to about two minutes on a
// 2-core machine.
import { parseArgs } from "node:util";

export interface BenchOptions {
  /** Seconds of each bulk transfer on one connection. */
  throughputSeconds: number;
  /** Bulk transfers per path; the table shows the median. */
  runs: number;
  /** Bytes of each write of the bulk transfer (KiB). */
  chunkKiB: number;
  /** Request/response round trips on one connection, per path (after 100 unmeasured ones). */
  pings: number;
  /** Bytes of each request and response (latency and connection rate). */
  messageBytes: number;
  /** Seconds of connection setup (connect, request, response, close), per path. */
  connectSeconds: number;
  /** Connections in flight at once during the connection-rate measurement. */
  concurrency: number;
  /** Put the table in bench/README.md and the JSON in bench/edge/results-throughput.json. */
  write: boolean;
}

export function parseOptions(argv: string[] = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: "string", default: "5" },
      runs: { type: "string", default: "3" },
      chunk: { type: "string", default: "64" },
      pings: { type: "string", default: "2000" },
      message: { type: "string", default: "64" },
      "connect-seconds": { type: "string", default: "5" },
      concurrency: { type: "string", default: "8" },
      write: { type: "boolean", default: false },
    },
  });
  return {
    throughputSeconds: positive("seconds", values.seconds),
    runs: positive("runs", values.runs),
    chunkKiB: positive("chunk", values.chunk),
    pings: positive("pings", values.pings),
    messageBytes: positive("message", values.message),
    connectSeconds: positive("connect-seconds", values["connect-seconds"]),
    concurrency: positive("concurrency", values.concurrency),
    write: values.write,
  };
}

function positive(flag: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${flag} must be a positive integer, not ${text}`);
  return n;
}
