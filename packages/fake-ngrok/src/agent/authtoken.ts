// What an agent authtoken looks like. ngrok tells a token that cannot be one
// (ERR_NGROK_105) from a well-formed one it does not know (ERR_NGROK_107); the fake's
// notion of "well-formed" is ngrok's visible shape: two alphanumeric runs joined by "_".
import { randomBytes } from "node:crypto";

const SHAPE = /^[0-9A-Za-z]{8,64}_[0-9A-Za-z]{8,64}$/;

export function isWellFormedAuthtoken(token: string): boolean {
  return SHAPE.test(token);
}

const alphanumeric = (bytes: number): string => randomBytes(bytes).toString("base64url").replace(/[-_]/g, "x");

/** A fresh token in ngrok's shape (e.g. `2aBc…_3xYz…`); add it to `account.authtokens` to make it valid. */
export function newAuthtoken(): string {
  return `2${alphanumeric(19).slice(0, 26)}_${alphanumeric(18).slice(0, 23)}`;
}
