import { afterEach, describe, expect, it } from "vitest";
import { failureOf } from "../src/api/client";
import { errorsFromFailure, errorText, failureText, refusalMessage } from "../src/forms";
import { catalogs, setLanguage } from "../src/i18n";

// A refusal as the services send it (shared/errors.py): the member's pointer, its English reason, its code and
// the limits to word it.
const refusal = (pointer: string, reason: string, code?: string, params?: Record<string, string | number>) =>
  failureOf(422, { type: "https://canvass.example/problems/validation", title: "Request validation failed", errors: [{ pointer, reason, code, params }] });

const FIELDS = { "/body/contact/name": "reg-name", "/body/contact/phone": "reg-contact", "/body/text": "tip-text" };

describe("refusals in the reader's language", () => {
  afterEach(() => setLanguage("en"));

  it("words a known code with its limit after the field's label, in English and in Spanish", () => {
    const f = refusal("/body/contact/name", "String should have at most 200 characters", "string_too_long", { max_length: 200 });
    setLanguage("en");
    expect(errorsFromFailure(f, FIELDS, { "reg-name": "Your name" })).toEqual([{ field: "reg-name", message: "Your name: Enter at most 200 characters" }]);
    setLanguage("es");
    expect(errorsFromFailure(f, FIELDS, { "reg-name": "Su nombre" })).toEqual([{ field: "reg-name", message: "Su nombre: Escriba como máximo 200 caracteres" }]);
  });

  it("formats the limit as the reader writes numbers", () => {
    setLanguage("en");
    const f = refusal("/body/text", "at most 10000 characters", "string_too_long", { max_length: 10000 });
    expect(errorsFromFailure(f, FIELDS)[0]?.message).toBe("Enter at most 10,000 characters");
  });

  it("words the services' own codes, with the agency they name", () => {
    setLanguage("es");
    const phone = refusal("/body/contact/phone", "not a valid phone number for its region (…)", "phone_invalid");
    expect(errorsFromFailure(phone, FIELDS, { "reg-contact": "Correo o teléfono" })[0]).toEqual({
      field: "reg-contact",
      message: "Correo o teléfono: Escriba un número de teléfono que exista, con su código de área, como (414) 555-0123",
    });
    const outside = refusal("/body/location", "[1, 2] lies outside the jurisdiction of Eastport PD (eastport); …", "outside_jurisdiction", { agency: "Eastport PD" });
    expect(errorText(errorsFromFailure(outside, {})[0]!)).toBe("Este lugar está fuera del área de Eastport PD; elija un lugar dentro de ella u otro programa");
    const old = refusal("/body/window/end", "the window ended more than 3650 days ago, …", "too_old", { days: 3650 });
    expect(errorsFromFailure(old, { "/body/window": "rq-end" }, { "rq-end": "Fin" })[0]?.message).toBe(
      "Fin: Fue hace más de 3,650 días: ninguna cámara guarda imágenes tanto tiempo",
    );
  });

  it("says an unknown code plainly in the reader's language, keeping the service's words after it", () => {
    setLanguage("es");
    const f = refusal("/body/cameras/0", "no camera 42 here", "something_new");
    const [e] = errorsFromFailure(f, { "/body/cameras": "cams" }, { cams: "Cámaras" });
    expect(e).toEqual({ field: "cams", message: "Cámaras: Esto no fue aceptado", said: "no camera 42 here" });
    expect(errorText(e!)).toBe("Cámaras: Esto no fue aceptado (no camera 42 here)");
    // From a service that sends no code at all, the same.
    expect(errorsFromFailure(failureOf(422, { errors: [{ pointer: "/body/x", reason: "bad" }] }), {})[0]).toEqual({ field: null, message: "Esto no fue aceptado", said: "bad" });
  });

  it("words a code whose param holds braces, as an agency's name may", () => {
    setLanguage("es");
    const outside = refusal("/body/location", "lies outside the jurisdiction of Police {North}", "outside_jurisdiction", { agency: "Police {North}" });
    expect(errorsFromFailure(outside, {})[0]).toEqual({
      field: null,
      message: "Este lugar está fuera del área de Police {North}; elija un lugar dentro de ella u otro programa",
    });
  });

  it("never shows a placeholder when a code comes without the limit its sentence needs", () => {
    setLanguage("es");
    expect(refusalMessage({ pointer: "/body/x", reason: "too long", code: "string_too_long" })).toEqual({ message: "Esto no fue aceptado", said: "too long" });
  });

  it("is not fooled by a code that names an object's own property", () => {
    setLanguage("en");
    expect(refusalMessage({ pointer: "/body/x", reason: "odd", code: "constructor" }).message).toBe("This was not accepted");
    expect(failureText(failureOf(409, { type: "https://canvass.example/problems/constructor", detail: "odd" }))).toBe(
      "This cannot be done now; reload the page to see where things stand (odd)",
    );
  });

  it("words a problem without fields from its type, else from its status, never with English alone", () => {
    setLanguage("es");
    const integrity = failureOf(500, { type: "https://canvass.example/problems/evidence-integrity", title: "Evidence integrity check failed", detail: "The stored file is missing …" });
    expect(failureText(integrity)).toBe(catalogs.es!["refusal.kind_evidence_integrity"]);
    const code = failureOf(400, { type: "https://canvass.example/problems/invalid-reset-code", detail: "This code is not valid: …" });
    expect(failureText(code)).toBe("Este código no es válido: ya se usó, venció o nunca se emitió");
    expect(failureText(failureOf(403, { type: "https://canvass.example/problems/forbidden", detail: "Your token is for …" }))).toBe("No tiene permiso para hacer esto.");
    const conflict = failureOf(409, { type: "https://canvass.example/problems/conflict", detail: "This request is closed: it takes no more answers." });
    expect(errorsFromFailure(conflict, {})).toEqual([
      { field: null, message: "Esto no se puede hacer ahora; vuelva a cargar la página para ver cómo están las cosas", said: "This request is closed: it takes no more answers." },
    ]);
    expect(failureText(failureOf(400, { type: "https://canvass.example/problems/bad-request" }))).toBe("Algo salió mal. Inténtelo más tarde.");
  });

  it("has a sentence in every language for every code and problem type it words", () => {
    const keys = Object.keys(catalogs.en!).filter((k) => k.startsWith("refusal."));
    expect(keys.length).toBeGreaterThan(20);
    for (const key of keys) expect(catalogs.es![key as keyof (typeof catalogs)["en"]], key).not.toBe(catalogs.en![key as keyof (typeof catalogs)["en"]]);
  });
});
