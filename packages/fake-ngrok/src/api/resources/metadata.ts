// The size limit ngrok documents for `metadata` ("Optional, max 4096 bytes"); the fake
// applies it to `description` as well. Over it: ERR_NGROK_421 (the reserved-domain code;
// the docs give several per resource and none for reserved addresses, so the fake uses
// 421 for both).
import { ApiErrors } from "../errors.ts";
import { type Json, MAX_METADATA_BYTES } from "./context.ts";

export function checkMetadata(body: Json): void {
  for (const field of ["metadata", "description"] as const) {
    const value = body[field];
    if (typeof value === "string" && Buffer.byteLength(value) > MAX_METADATA_BYTES) {
      throw ApiErrors.metadataTooLong(MAX_METADATA_BYTES, Buffer.byteLength(value));
    }
  }
}
