import { describe, expect, it } from "@jest/globals";
import { fromSdkError, parseErrorCode, retryDelayMs } from "../../src/provider/errors.ts";

describe("ngrok errors", () => {
  it("reads the code the SDK leaves only in the message (listenAndForward sets no errorCode)", () => {
    const error = new Error("failed to start listener: The endpoint 'https://app.example.com' is already online. error_code: ERR_NGROK_334");
    const typed = fromSdkError(error, "bind");
    expect(typed.code).toBe("ERR_NGROK_334");
    expect(typed.reason).toBe("EndpointConflict");
    expect(typed.retryable).toBe(true);
    expect(typed.message).not.toContain("error_code");
  });

  it("maps the session codes the research lists to condition reasons", () => {
    const reason = (code: string) => fromSdkError(new Error(`failed to connect session: x error_code: ${code}`), "auth").reason;
    expect(reason("ERR_NGROK_105")).toBe("InvalidCredentials");
    expect(reason("ERR_NGROK_107")).toBe("InvalidCredentials");
    expect(reason("ERR_NGROK_108")).toBe("SessionLimitExceeded");
    expect(reason("ERR_NGROK_319")).toBe("DomainNotReserved");
    expect(reason("ERR_NGROK_18019")).toBe("PoolingUnavailable");
    expect(reason("ERR_NGROK_312")).toBe("PlanLimit");
  });

  it("treats a failed connect without a code as the network's fault, not the token's", () => {
    const typed = fromSdkError(new Error("failed to connect session: failed to establish tcp connection"), "auth");
    expect(typed.kind).toBe("transport");
    expect(typed.reason).toBe("Unreachable");
    expect(parseErrorCode(typed.message)).toBeUndefined();
  });

  it("caps and jitters retries", () => {
    expect(retryDelayMs("never", 3)).toBeUndefined();
    expect(retryDelayMs("backoff", 0, () => 0)).toBe(500);
    expect(retryDelayMs("backoff", 30, () => 1)).toBe(60_000);
    expect(retryDelayMs("slow", 30, () => 1)).toBe(600_000);
  });
});
