// The real @ngrok/ngrok SDK, safe to load from several test files in one Jest worker.
// Import this (for its effect) before anything loads the SDK in a test file.
//
// Why: Jest evaluates a CommonJS module again for every test file, but the native addon
// (and so its classes) is loaded once per process. The SDK's index.js wraps the classes'
// prototypes as it loads (`SessionBuilder.prototype._connect = SessionBuilder.prototype.connect;
// SessionBuilder.prototype.connect = wrapper`, the same for `listen`), so the second
// evaluation makes `_connect` the first wrapper and connect() calls itself until the stack
// overflows. The first load's native methods are kept on the (shared) prototypes under a
// registry symbol and put back after each load. Outside Jest the SDK loads once and this
// changes nothing.
import * as sdk from "@ngrok/ngrok";

const NATIVE = Symbol.for("ktube.fake-ngrok.native-sdk-methods");

type Prototype = Record<string | symbol, unknown>;

function restoreNative(prototype: object, name: "_connect" | "_listen"): void {
  const proto = prototype as Prototype;
  const stash = (proto[NATIVE] ??= { [name]: proto[name] }) as Record<string, unknown>;
  proto[name] = stash[name];
}

restoreNative(sdk.SessionBuilder.prototype, "_connect");
for (const builder of [sdk.HttpListenerBuilder, sdk.TcpListenerBuilder, sdk.TlsListenerBuilder, sdk.LabeledListenerBuilder]) {
  restoreNative(builder.prototype, "_listen");
}

export const ngrok = sdk;
