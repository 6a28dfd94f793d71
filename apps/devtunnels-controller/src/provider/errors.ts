// What the Dev Tunnels service answered, as a typed provider error. The SDK throws axios
// errors (status in `response.status`, the service's problem details in `response.data`) or
// plain Errors whose message carries the status; this is the one place that reads them.
import { ProviderError, ProviderRateLimited } from "@ktube/provider-kit";

interface AxiosLike {
  message?: string;
  response?: { status?: number; data?: unknown; headers?: Record<string, unknown> };
}

function detailOf(data: unknown): string | undefined {
  if (!data || typeof data !== "object") return typeof data === "string" && data.length < 500 ? data : undefined;
  const d = data as { title?: string; detail?: string; errors?: Record<string, string[]> };
  const errors = d.errors ? Object.values(d.errors).flat().join("; ") : undefined;
  return [d.title, d.detail, errors].filter(Boolean).join(": ") || undefined;
}

/** Status code of an SDK error, if it has one. */
export function statusOf(error: unknown): number | undefined {
  const e = error as AxiosLike;
  if (typeof e?.response?.status === "number") return e.response.status;
  const m = /status code (\d{3})|\b(\d{3}) (?:Unauthorized|Forbidden|Not Found|Conflict|Too Many Requests)/i.exec(String(e?.message ?? ""));
  return m ? Number(m[1] ?? m[2]) : undefined;
}

/** The SDK error as a ProviderError whose reason becomes a condition reason. */
export function fromSdkError(error: unknown, what: string): ProviderError {
  if (error instanceof ProviderError) return error;
  const e = error as AxiosLike;
  const status = statusOf(error);
  const detail = detailOf(e?.response?.data) ?? String(e?.message ?? error);
  const message = `${what}: ${detail}`;
  // A limit (tunnels per identity, ports per tunnel) is a problem body naming it, on a 403 or,
  // as the VS Code CLI expects, a 429: not a rate limit to wait out, a quota to report.
  if ((status === 403 || status === 429) && /resource limit exceeded|limit \w+ exceeded|per ?user|quota/i.test(detail)) {
    return new ProviderError("QuotaExceeded", message, { status });
  }
  switch (status) {
    case 401:
      return new ProviderError("InvalidCredentials", message, { status, terminal: true });
    case 403:
      // Limits are 403s "with details about the limit in the response body".
      return new ProviderError(/limit|quota|maximum|exceed/i.test(detail) ? "QuotaExceeded" : "Forbidden", message, { status });
    case 404:
      return new ProviderError("NotFound", message, { status });
    case 409:
      return new ProviderError("Conflict", message, { status });
    case 429: {
      const retryAfter = Number(e?.response?.headers?.["retry-after"] ?? 60);
      return new ProviderRateLimited(message, (Number.isFinite(retryAfter) ? retryAfter : 60) * 1000);
    }
    default:
      return new ProviderError(status && status >= 500 ? "ServiceUnavailable" : "Unreachable", message, status ? { status } : {});
  }
}
