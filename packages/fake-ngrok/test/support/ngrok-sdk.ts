// The real @ngrok/ngrok SDK for this package's tests: the shim other packages use too.
export { ngrok } from "../../src/sdk-in-jest.ts";
