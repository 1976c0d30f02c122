import type { ApiError } from "@dashboard/contracts";
import { NextResponse } from "next/server";
import type { ZodError } from "zod";

/** A JSON response. Successful bodies are `{ data }` or `{ data, pagination }`. */
export function json<T>(data: T, status = 200): NextResponse<T> {
  return NextResponse.json(data, { status });
}

/** The error envelope shared by every endpoint: `{ error: { code, message, details? } }`. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  details?: unknown,
): NextResponse<ApiError> {
  const error: ApiError["error"] = details === undefined ? { code, message } : { code, message, details };
  return json<ApiError>({ error }, status);
}

/** 400 with the flattened Zod issues, ready for form field errors in the web app. */
export function badRequest(error: ZodError): NextResponse<ApiError> {
  return errorResponse(400, "validation_error", "Invalid request", error.flatten());
}

export function unauthorized(message = "Authentication required"): NextResponse<ApiError> {
  return errorResponse(401, "unauthorized", message);
}

export function forbidden(message = "Forbidden"): NextResponse<ApiError> {
  return errorResponse(403, "forbidden", message);
}

export function notFound(message = "Not found"): NextResponse<ApiError> {
  return errorResponse(404, "not_found", message);
}

export function noContent(): NextResponse {
  return new NextResponse(null, { status: 204 });
}

/** 500 without leaking database or stack details to the client. */
export function serverError(cause: unknown): NextResponse<ApiError> {
  console.error("[api] unexpected error", cause);
  return errorResponse(500, "internal_error", "Something went wrong");
}
