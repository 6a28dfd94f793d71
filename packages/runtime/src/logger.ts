// Structured logs: JSON by default (LOG_FORMAT=json|text), level from LOG_LEVEL.
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

export type { Logger };

export interface LoggerOptions {
  format?: "json" | "text";
  level?: string;
  name?: string;
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? (process.env.LOG_FORMAT === "text" ? "text" : "json");
  const level = options.level ?? process.env.LOG_LEVEL ?? "info";
  const base = { name: options.name };
  const settings = {
    level,
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    // A last line of defence: nothing under these keys is ever written.
    redact: { paths: ["token", "*.token", "secret", "*.secret", "password", "*.password", "authorization", "*.authorization", "data", "*.data", "stringData"], censor: "[REDACTED]" },
  };
  if (format === "text") {
    return pino(settings, pretty({ sync: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname", destination: options.destination ?? process.stdout }));
  }
  return pino(settings, (options.destination ?? process.stdout) as pino.DestinationStream);
}
