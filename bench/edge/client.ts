// The client, run inside the client namespace with `ip netns exec` (node: modules only).
// Each mode prints one JSON line with its numbers and this process's CPU time.
//
//   client.ts wait <host> <echoPort> <timeoutMs> <bytes>
//     retries a request/response until one comes back (Envoy's health checks have passed)
//   client.ts throughput <host> <sinkPort> <seconds> <chunkKiB>
//     one connection: writes for <seconds>, half-closes, and waits for the sink's byte count
//   client.ts latency <host> <echoPort> <count> <bytes>
//     one connection: <count> sequential round trips of <bytes> (after 100 unmeasured ones)
//   client.ts connect <host> <echoPort> <seconds> <concurrency> <bytes>
//     new connections for <seconds>, <concurrency> at a time: connect, request, response, close
import { connect, type Socket } from "node:net";

const [mode, host = "", port = "0", ...rest] = process.argv.slice(2);
const PORT = Number(port);
const now = (): number => performance.now();
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function open(noDelay: boolean): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: PORT, noDelay, allowHalfOpen: true });
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Writes `message` and resolves once as many bytes came back. */
function roundTrip(socket: Socket, message: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      if (got >= message.length) {
        cleanup();
        resolve();
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection closed after ${got} of ${message.length} bytes`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
    };
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("error", onError);
    socket.write(message);
  });
}

/** Half-closes and waits until the other side closed too. */
function close(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once("close", () => resolve());
    socket.on("data", () => undefined);
    socket.end();
  });
}

async function wait(timeoutMs: number, bytes: number): Promise<Record<string, unknown>> {
  const started = now();
  let attempts = 0;
  let last = "";
  while (now() - started < timeoutMs) {
    attempts++;
    try {
      const socket = await open(true);
      try {
        await Promise.race([roundTrip(socket, Buffer.alloc(bytes, 1)), sleep(1000).then(() => Promise.reject(new Error("no answer within 1 s")))]);
        await close(socket);
        return { ok: true, attempts, ms: now() - started };
      } finally {
        socket.destroy();
      }
    } catch (error) {
      last = (error as Error).message;
      await sleep(200);
    }
  }
  return { ok: false, attempts, ms: now() - started, error: last };
}

async function throughput(seconds: number, chunkKiB: number): Promise<Record<string, unknown>> {
  const chunk = Buffer.alloc(chunkKiB * 1024, 7);
  const socket = await open(false);
  const started = now();
  const stopAt = started + seconds * 1000;
  let sent = 0;
  const reply = new Promise<string>((resolve, reject) => {
    let text = "";
    socket.on("data", (data: Buffer) => (text += data.toString()));
    socket.once("end", () => resolve(text));
    socket.once("error", reject);
  });
  while (now() < stopAt) {
    sent += chunk.length;
    if (!socket.write(chunk)) await new Promise((resolve) => socket.once("drain", resolve));
  }
  socket.end();
  const received = Number(await reply);
  const ms = now() - started;
  socket.destroy();
  if (received !== sent) throw new Error(`sent ${sent} bytes, the sink counted ${received}`);
  return { bytes: received, ms };
}

async function latency(count: number, bytes: number): Promise<Record<string, unknown>> {
  const socket = await open(true);
  const message = Buffer.alloc(bytes, 3);
  for (let i = 0; i < 100; i++) await roundTrip(socket, message);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = now();
    await roundTrip(socket, message);
    samples.push(now() - t);
  }
  await close(socket);
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]!;
  return { count, p50Ms: at(0.5), p99Ms: at(0.99), meanMs: samples.reduce((a, b) => a + b, 0) / samples.length, maxMs: samples[samples.length - 1] };
}

async function connectRate(seconds: number, concurrency: number, bytes: number): Promise<Record<string, unknown>> {
  const message = Buffer.alloc(bytes, 5);
  const started = now();
  const stopAt = started + seconds * 1000;
  let done = 0;
  let errors = 0;
  let firstError = "";
  const worker = async (): Promise<void> => {
    while (now() < stopAt) {
      let socket: Socket | undefined;
      try {
        socket = await open(true);
        await roundTrip(socket, message);
        await close(socket);
        done++;
      } catch (error) {
        errors++;
        firstError ||= (error as Error).message;
        socket?.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = now() - started;
  return { connections: done, errors, ...(firstError ? { firstError } : {}), ms, perSecond: done / (ms / 1000) };
}

const numbers = rest.map(Number);
const cpuBefore = process.cpuUsage();
let result: Record<string, unknown>;
if (mode === "wait") result = await wait(numbers[0]!, numbers[1]!);
else if (mode === "throughput") result = await throughput(numbers[0]!, numbers[1]!);
else if (mode === "latency") result = await latency(numbers[0]!, numbers[1]!);
else if (mode === "connect") result = await connectRate(numbers[0]!, numbers[1]!, numbers[2]!);
else throw new Error(`unknown mode ${mode}: wait | throughput | latency | connect`);
const cpu = process.cpuUsage(cpuBefore);
console.log(JSON.stringify({ ...result, clientCpuSeconds: (cpu.user + cpu.system) / 1e6 }));
