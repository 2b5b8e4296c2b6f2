/** The agency admin's program page, through the published contracts only: the jurisdiction (drawn on the map,
 * corner by corner, or uploaded as a GeoJSON file; the API's problems shown at the file's field), the request
 * policy and caps (sent with If-Match: a change made elsewhere meanwhile is shown as a conflict and what was typed
 * is kept), the agency's webhook (requests_api), and the registrations due for re-confirmation. */

import { attempt, bearer, ifMatch, registry, requests, type Agency, type Failure } from "../api/client";
import { h, uid } from "../dom";
import { errorsFromFailure, failureText, showErrors, textField, type FieldError } from "../forms";
import { formatDate, formatNumber, t, type MessageKey } from "../i18n";
import { jurisdictionOf, type Geometry } from "../jurisdiction";
import { coverageHref } from "../coverage";
import { createMap, type PortalMap } from "../map";
import { whenConnected } from "../place";
import { onLeave } from "../router";
import { staff, staffToken } from "../staff";
import { signInFirst } from "./agency";


const POLICY_NUMBERS = [
  "max_request_area_m2",
  "max_request_window_hours",
  "default_request_expiry_days",
  "evidence_retention_days",
  "max_search_radius_m",
  "reconfirm_after_days",
] as const;
type PolicyNumber = (typeof POLICY_NUMBERS)[number];
const DUE_WITHIN_DAYS = 30;

async function authHeaders(): Promise<{ Authorization: string } | Record<string, never>> {
  const token = await staffToken();
  return token ? bearer(token) : {};
}

function section(title: string, ...children: (Node | string)[]): HTMLElement {
  const id = uid("program-section");
  return h("section", { class: "portal-card", "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

function note(text: string, kind: "success" | "info" = "success"): HTMLElement {
  return h(
    "div",
    { class: `usa-alert usa-alert--${kind} usa-alert--slim`, role: "status" },
    h("div", { class: "usa-alert__body" }, h("p", { class: "usa-alert__text" }, text)),
  );
}

export async function programPage(main: HTMLElement): Promise<void> {
  const s = staff();
  if (!s) {
    signInFirst(main, t("program.title"));
    return;
  }
  if (!s.roles.includes("agency_admin")) {
    main.append(h("h1", {}, t("program.title")), note(t("program.admins_only"), "info"));
    return;
  }
  const slug = s.agency;
  const loaded = await attempt(async () =>
    registry().GET("/v1/agencies/{slug}", { params: { path: { slug } }, headers: await authHeaders() }),
  );
  main.append(h("h1", {}, t("program.title")));
  if (!loaded.ok) {
    const summary = h("div", { class: "error-summary-host" });
    main.append(summary);
    showErrors(main, summary, errorsFromFailure(loaded.failure, {}));
    return;
  }
  let agency: Agency = loaded.data;
  // The version the page last read: every change is sent with it (If-Match) and moves it.
  let version = agency.properties.version ?? 0;
  main.append(
    h("p", { class: "usa-intro" }, t("program.intro", { name: agency.properties.name })),
    // Where the program's cameras are: the public map anyone sees, and the exact one with the gaps to recruit in.
    h(
      "ul",
      { class: "usa-list cov-links" },
      h("li", {}, h("a", { class: "usa-link", href: coverageHref(slug) }, t("cov.program_public"))),
      h("li", {}, h("a", { class: "usa-link", href: "/agency?coverage=1" }, t("cov.program_recruit"))),
    ),
  );

  const reread = async (): Promise<void> => {
    const again = await attempt(async () =>
      registry().GET("/v1/agencies/{slug}", { params: { path: { slug } }, headers: await authHeaders() }),
    );
    if (again.ok) {
      agency = again.data;
      version = again.data.properties.version ?? version;
    }
  };
  const conflict = (failure: Failure, fields: Record<string, string>, labels: Record<string, string>): FieldError[] =>
    failure.status === 412 ? [{ field: null, message: t("program.conflict") }] : errorsFromFailure(failure, fields, labels);

  // --- The jurisdiction -----------------------------------------------------------------------------------------
  const corners: [number, number][] = []; // [lon, lat], in the order they were selected
  let map: PortalMap | null = null;
  const drawStatus = h("p", { class: "usa-hint", "aria-live": "polite" }, t("program.corners", { n: 0 }));
  const drawn = (): Geometry | null =>
    corners.length >= 3 ? { type: "Polygon", coordinates: [[...corners, corners[0]!]] } : null;
  const redraw = () => {
    drawStatus.textContent = t("program.corners", { n: corners.length });
    const shapes: Agency[] = [agency];
    const d = drawn();
    if (d) shapes.push({ ...agency, geometry: d });
    map?.showAgencies(shapes, false);
    const last = corners.at(-1);
    if (last) map?.setPin(last[1], last[0], false);
  };
  const mapBox = h("div", { class: "portal-map-box" });
  const fileInput = h("input", {
    class: "usa-file-input__input",
    type: "file",
    id: "program-jurisdiction",
    name: "program-jurisdiction",
    accept: ".geojson,.json,application/geo+json,application/json",
    "aria-describedby": "program-jurisdiction-hint",
  });
  const jurisdictionSummary = h("div", { class: "error-summary-host" });
  const jurisdictionResult = h("div", {});
  const saveJurisdiction = async (): Promise<void> => {
    jurisdictionResult.replaceChildren();
    const file = fileInput.files?.[0];
    let geometry: Geometry | null = null;
    let field: string | null = null;
    if (file) {
      field = "program-jurisdiction";
      const parsed = jurisdictionOf(await file.text());
      if ("problem" in parsed) {
        showErrors(jurisdictionForm, jurisdictionSummary, [{ field, message: t(parsed.problem) }]);
        return;
      }
      geometry = parsed.geometry;
    } else {
      geometry = drawn();
      if (!geometry) {
        showErrors(jurisdictionForm, jurisdictionSummary, [{ field: "program-jurisdiction", message: t("program.nothing_to_save") }]);
        return;
      }
    }
    const fields = { "/body/jurisdiction": field ?? "program-jurisdiction" };
    const labels = { "program-jurisdiction": t("program.jurisdiction") };
    const saved = await attempt(async () =>
      registry().PATCH("/v1/agencies/{slug}", {
        params: { path: { slug }, header: ifMatch(version) },
        headers: await authHeaders(),
        body: { jurisdiction: geometry },
      }),
    );
    if (!saved.ok) {
      showErrors(jurisdictionForm, jurisdictionSummary, conflict(saved.failure, fields, labels));
      return;
    }
    showErrors(jurisdictionForm, jurisdictionSummary, []);
    agency = saved.data;
    version = saved.data.properties.version ?? version;
    corners.length = 0;
    fileInput.value = "";
    redraw();
    map?.showAgencies([agency], true);
    jurisdictionResult.replaceChildren(
      note(
        t("program.jurisdiction_saved", {
          outside: formatNumber(saved.data.properties.registrations_outside ?? 0),
          newly: formatNumber(saved.data.properties.registrations_newly_outside ?? 0),
        }),
      ),
    );
  };
  // The map and its controls span the card; the form holds the file and the button that saves either.
  const drawing = h(
    "div",
    {},
    h("p", { class: "usa-hint" }, t("program.draw_hint")),
    mapBox,
    drawStatus,
    h(
      "div",
      { class: "portal-actions" },
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => { corners.pop(); redraw(); } }, t("program.undo_corner")),
      h("button", { type: "button", class: "usa-button usa-button--outline", onclick: () => { corners.length = 0; redraw(); } }, t("program.clear_drawing")),
    ),
  );
  const jurisdictionForm = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    h(
      "div",
      { class: "usa-form-group", "data-field": "program-jurisdiction" },
      h("label", { class: "usa-label", for: "program-jurisdiction" }, t("program.jurisdiction")),
      h("div", { class: "usa-hint", id: "program-jurisdiction-hint" }, t("program.file_hint")),
      fileInput,
    ),
    h("button", { type: "submit", class: "usa-button" }, t("program.save_jurisdiction")),
  );
  jurisdictionForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void saveJurisdiction();
  });

  // --- The request policy and caps --------------------------------------------------------------------------------
  const policy = agency.properties.policy;
  const values: Record<PolicyNumber, string> = Object.fromEntries(
    POLICY_NUMBERS.map((k) => [k, policy ? String(policy[k]) : ""]),
  ) as Record<PolicyNumber, string>;
  const approval = h("input", { class: "usa-checkbox__input", type: "checkbox", id: "policy-requires_approval", name: "policy-requires_approval" });
  approval.checked = policy?.requires_approval ?? true;
  const policySummary = h("div", { class: "error-summary-host" });
  const policyResult = h("div", {});
  const policyLabels = Object.fromEntries(POLICY_NUMBERS.map((k) => [`policy-${k}`, t(`program.${k}`)]));
  const policyFields = Object.fromEntries(POLICY_NUMBERS.map((k) => [`/body/policy/${k}`, `policy-${k}`]));
  // Only what the admin changed is sent, so a change made elsewhere to another cap is not undone.
  const touched = new Set<PolicyNumber | "requires_approval">();
  approval.addEventListener("change", () => touched.add("requires_approval"));
  const showLatest = () => {
    const latest = agency.properties.policy;
    if (!latest) return;
    for (const k of POLICY_NUMBERS) {
      if (touched.has(k)) continue;
      values[k] = String(latest[k]);
      const input = policyForm.querySelector<HTMLInputElement>(`#policy-${k}`);
      if (input) input.value = values[k];
    }
    if (!touched.has("requires_approval")) approval.checked = latest.requires_approval;
  };
  const savePolicy = async (): Promise<void> => {
    policyResult.replaceChildren();
    const body: Record<string, number | boolean> = {};
    if (touched.has("requires_approval")) body.requires_approval = approval.checked;
    const bad: FieldError[] = [];
    for (const k of POLICY_NUMBERS) {
      if (!touched.has(k)) continue;
      const n = Number(values[k].trim());
      if (!values[k].trim() || !Number.isFinite(n)) bad.push({ field: `policy-${k}`, message: `${t(`program.${k}`)}: ${t("program.not_a_number")}` });
      else body[k] = n;
    }
    if (bad.length) {
      showErrors(policyForm, policySummary, bad);
      return;
    }
    if (!Object.keys(body).length) {
      showErrors(policyForm, policySummary, []);
      policyResult.replaceChildren(note(t("program.policy_unchanged"), "info"));
      return;
    }
    const saved = await attempt(async () =>
      registry().PATCH("/v1/agencies/{slug}", {
        params: { path: { slug }, header: ifMatch(version) },
        headers: await authHeaders(),
        body: { policy: body },
      }),
    );
    if (!saved.ok) {
      const errors = conflict(saved.failure, policyFields, policyLabels);
      showErrors(policyForm, policySummary, errors, saved.failure.status === 412 ? () => void reread().then(() => {
        showLatest();
        showErrors(policyForm, policySummary, []);
        policyResult.replaceChildren(note(t("program.reloaded"), "info"));
      }) : undefined);
      if (saved.failure.status === 412) {
        policySummary.querySelector("button")!.textContent = t("program.load_latest");
      }
      return;
    }
    showErrors(policyForm, policySummary, []);
    agency = saved.data;
    version = saved.data.properties.version ?? version;
    touched.clear();
    policyResult.replaceChildren(note(t("program.policy_saved")));
  };
  const policyForm = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    POLICY_NUMBERS.map((k) =>
      textField({
        id: `policy-${k}`,
        label: t(`program.${k}`),
        hint: t(`program.${k}_hint`),
        value: values[k],
        inputmode: "decimal",
        width: "small",
        onInput: (v) => {
          values[k] = v;
          touched.add(k);
        },
      }),
    ),
    h(
      "div",
      { class: "usa-form-group", "data-field": "policy-requires_approval" },
      h("div", { class: "usa-checkbox" }, approval, h("label", { class: "usa-checkbox__label", for: "policy-requires_approval" }, t("program.requires_approval"))),
    ),
    h("button", { type: "submit", class: "usa-button" }, t("program.save_policy")),
  );
  policyForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void savePolicy();
  });

  // --- The webhook ----------------------------------------------------------------------------------------------------
  const hook = await attempt(async () =>
    requests().GET("/v1/agencies/{slug}/webhook", { params: { path: { slug } }, headers: await authHeaders() }),
  );
  let hookUrl = hook.ok ? hook.data.url : "";
  const hookActive = h("input", { class: "usa-checkbox__input", type: "checkbox", id: "webhook-active", name: "webhook-active" });
  hookActive.checked = hook.ok ? hook.data.active : true;
  const hookSummary = h("div", { class: "error-summary-host" });
  const hookResult = h("div", {}, hook.ok ? note(t("program.webhook_current", { url: hook.data.url }), "info") : note(t("program.webhook_none"), "info"));
  const saveHook = async (): Promise<void> => {
    const saved = await attempt(async () =>
      requests().PUT("/v1/agencies/{slug}/webhook", {
        params: { path: { slug } },
        headers: await authHeaders(),
        body: { url: hookUrl.trim(), active: hookActive.checked },
      }),
    );
    if (!saved.ok) {
      showErrors(hookForm, hookSummary, errorsFromFailure(saved.failure, { "/body/url": "webhook-url", "/body": "webhook-url" }, { "webhook-url": t("program.webhook_url") }));
      return;
    }
    showErrors(hookForm, hookSummary, []);
    hookResult.replaceChildren(
      note(t("program.webhook_saved", { url: saved.data.url })),
      saved.data.secret
        ? h("div", { class: "credential-box" }, h("p", {}, t("program.webhook_secret")), h("code", { class: "credential-value" }, saved.data.secret))
        : "",
    );
  };
  const removeHook = async (): Promise<void> => {
    const removed = await attempt(async () =>
      requests().DELETE("/v1/agencies/{slug}/webhook", { params: { path: { slug } }, headers: await authHeaders() }),
    );
    if (!removed.ok && removed.failure.status !== 404) {
      showErrors(hookForm, hookSummary, errorsFromFailure(removed.failure, {}));
      return;
    }
    showErrors(hookForm, hookSummary, []);
    hookResult.replaceChildren(note(t("program.webhook_removed")));
  };
  const hookForm = h(
    "form",
    { class: "usa-form usa-form--large", novalidate: true },
    textField({ id: "webhook-url", label: t("program.webhook_url"), hint: t("program.webhook_url_hint"), value: hookUrl, type: "url", onInput: (v) => (hookUrl = v) }),
    h("div", { class: "usa-form-group" }, h("div", { class: "usa-checkbox" }, hookActive, h("label", { class: "usa-checkbox__label", for: "webhook-active" }, t("program.webhook_active")))),
    h(
      "div",
      { class: "portal-actions" },
      h("button", { type: "submit", class: "usa-button" }, t("program.save_webhook")),
      h("button", { type: "button", class: "usa-button usa-button--secondary", onclick: () => void removeHook() }, t("program.remove_webhook")),
    ),
  );
  hookForm.addEventListener("submit", (e) => {
    e.preventDefault();
    void saveHook();
  });

  // --- The registrations due for re-confirmation -----------------------------------------------------------------
  const dueBody = h("tbody", {});
  const dueHost = h("div", {});
  const more = h("button", { type: "button", class: "usa-button usa-button--outline" }, t("program.due_more"));
  const moreHost = h("div", {}); // the button is there only while the list has a next page
  let cursor: string | undefined;
  const loadDue = async (): Promise<void> => {
    const due = await attempt(async () =>
      registry().GET("/v1/agencies/{slug}/reconfirmations-due", {
        params: { path: { slug }, query: { within_days: DUE_WITHIN_DAYS, limit: 50, cursor } },
        headers: await authHeaders(),
      }),
    );
    if (!due.ok) {
      dueHost.replaceChildren(note(failureText(due.failure), "info"));
      return;
    }
    for (const item of due.data.items) {
      dueBody.append(
        h(
          "tr",
          {},
          h("td", { "data-label": t("program.due_id") }, h("code", {}, item.id.slice(0, 8))),
          h("td", { "data-label": t("program.due_status") }, t(`program.status_${item.status}` as MessageKey)),
          h("td", { "data-label": t("program.due_last") }, formatDate(item.last_confirmed_at)),
          h("td", { "data-label": t("program.due_at") }, formatDate(item.reconfirm_due_at)),
        ),
      );
    }
    const next = (due.data.links ?? []).find((l) => l.rel === "next")?.href;
    cursor = next ? (new URL(next, location.origin).searchParams.get("cursor") ?? undefined) : undefined;
    moreHost.replaceChildren(cursor ? more : "");
    if (!dueBody.children.length) dueHost.replaceChildren(h("p", {}, t("program.due_none", { days: DUE_WITHIN_DAYS })));
  };
  more.addEventListener("click", () => void loadDue());
  dueHost.append(
    h(
      "table",
      { class: "usa-table usa-table--borderless usa-table--stacked" },
      h("caption", {}, t("program.due_caption", { days: DUE_WITHIN_DAYS })),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          [t("program.due_id"), t("program.due_status"), t("program.due_last"), t("program.due_at")].map((c) => h("th", { scope: "col" }, c)),
        ),
      ),
      dueBody,
    ),
  );
  await loadDue();

  main.append(
    section(t("program.jurisdiction_title"), jurisdictionSummary, drawing, jurisdictionForm, jurisdictionResult),
    section(t("program.policy_title"), h("p", {}, t("program.policy_intro")), policySummary, policyForm, policyResult),
    section(t("program.webhook_title"), h("p", {}, t("program.webhook_intro")), hookSummary, hookResult, hookForm),
    section(t("program.due_title"), dueHost, moreHost),
  );
  whenConnected(mapBox, () => {
    map = createMap(mapBox, {
      onPick: (lat, lon) => {
        corners.push([Math.round(lon * 1e6) / 1e6, Math.round(lat * 1e6) / 1e6]);
        redraw();
      },
    });
    onLeave(() => map?.destroy());
    map.showAgencies([agency], true);
  });
}
