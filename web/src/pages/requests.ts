/** The footage requests that reached the registration: what is asked, and the answer — accept (then upload),
 * decline (the agency is never told who declined), or "footage unavailable". An upload shows its progress and
 * the SHA-256 the browser computed beside the one the service received; they must match. */

import { attempt, bearer, requests, type Evidence, type OwnerRequest } from "../api/client";
import { focus, h, uid } from "../dom";
import { errorsFromFailure, showErrors } from "../forms";
import { formatDate, formatNumber, formatPeriod, t, type MessageKey } from "../i18n";
import { credentialOrSignIn, failureBox, refused } from "../owner";
import { rerender } from "../router";
import { sha256Of } from "../sha256";
import { uploadEvidence } from "../upload";

type Answer = "accept" | "decline" | "unavailable";

const FILE_PROBLEMS: Partial<Record<number, MessageKey>> = {
  413: "requests.error_too_large",
  415: "requests.error_type",
};

/** The last upload's two hashes, shown again after the list is re-read. */
const receipts = new Map<string, { computed: string; evidence: Evidence }>();

export async function requestsPage(main: HTMLElement, params: Record<string, string>): Promise<void> {
  const id = params.id!;
  const credential = credentialOrSignIn(id);
  if (!credential) return;
  main.append(h("h1", {}, t("requests.title")));
  const outcome = await attempt(() => requests().GET("/v1/owner/requests", { headers: bearer(credential) }));
  if (!outcome.ok) {
    if (refused(id, outcome.failure)) return;
    main.append(failureBox(outcome.failure, rerender));
    return;
  }
  main.append(
    h("p", { class: "usa-intro" }, t("requests.intro")),
    h("p", {}, h("a", { href: `/registrations/${id}` }, t("requests.back"))),
  );
  const items = outcome.data.items;
  if (!items.length) {
    main.append(h("p", { class: "portal-empty" }, t("requests.none")));
    return;
  }
  items.forEach((item, i) => main.append(requestCard(item, credential, t("requests.position", { n: i + 1, total: items.length }))));
}

function requestCard(item: OwnerRequest, credential: string, position: string): HTMLElement {
  const headingId = uid("request");
  const summary = h("div", { class: "error-summary-host" });
  // Named by its heading and its place in the list: two requests of one agency for one kind of crime are told
  // apart in a screen reader's list of the page's regions.
  const card = h("section", { class: "portal-card", "aria-labelledby": `${headingId} ${headingId}-position` });

  const answer = async (value: Answer) => {
    const outcome = await attempt(() =>
      requests().POST("/v1/owner/requests/{request_id}/answer", {
        params: { path: { request_id: item.request_id } },
        headers: bearer(credential),
        body: { answer: value },
      }),
    );
    if (!outcome.ok) {
      showErrors(card, summary, errorsFromFailure(outcome.failure, {}), outcome.failure.retryable ? () => void answer(value) : undefined);
      return;
    }
    const answered = requestCard(outcome.data, credential, position);
    card.replaceWith(answered);
    // The button pressed is gone with the old card: the focus goes to the answer now recorded (read out, and the
    // next step, the upload, follows it), not back to the top of the page.
    focus(answered.querySelector<HTMLElement>(".portal-answer") ?? answered);
  };

  card.append(
    h("h2", { id: headingId }, t(`category.${item.category}` as MessageKey), " — ", item.agency_name),
    h("span", { id: `${headingId}-position`, hidden: true }, position),
    summary,
    h("p", { class: "portal-quote" }, item.message),
    h(
      "dl",
      { class: "portal-details" },
      h("dt", {}, t("requests.window")),
      h("dd", {}, formatPeriod(item.window.start, item.window.end)),
      h("dt", {}, t("requests.due")),
      h("dd", {}, formatDate(item.due_at, true)),
      h("dt", {}, t("requests.state")),
      h("dd", {}, h("span", { class: "usa-tag portal-answer" }, t(`answer.${item.state}` as MessageKey))),
    ),
  );
  const allowed = item.allowed_answers.filter((a): a is Answer => ["accept", "decline", "unavailable"].includes(a));
  if (allowed.length) {
    card.append(
      h("h3", {}, t("requests.answer_title")),
      h(
        "ul",
        { class: "usa-list usa-list--unstyled portal-answers" },
        allowed.map((a) =>
          h(
            "li",
            {},
            h(
              "button",
              { type: "button", class: `usa-button${a === "accept" ? "" : " usa-button--outline"}`, onclick: () => void answer(a) },
              t(`requests.${a}` as MessageKey),
            ),
            h("p", { class: "usa-hint" }, t(`requests.${a}_explain` as MessageKey)),
          ),
        ),
      ),
    );
  }
  if (item.state === "accepted" || item.state === "uploaded") card.append(uploadForm(item, credential));
  const receipt = receipts.get(item.request_id);
  if (receipt) card.append(receiptBox(receipt.computed, receipt.evidence));
  return card;
}

function uploadForm(item: OwnerRequest, credential: string): HTMLElement {
  const fileId = uid("upload-file");
  const summary = h("div", { class: "error-summary-host" });
  const input = h("input", { type: "file", id: fileId, name: fileId, class: "portal-file" });
  const progress = h("progress", { max: 100, value: 0, class: "portal-progress", "aria-labelledby": `${fileId}-progress-label` });
  const progressLabel = h("p", { id: `${fileId}-progress-label`, class: "usa-hint", "aria-live": "polite" });
  const progressBox = h("div", { class: "portal-progress-box", hidden: true }, progressLabel, progress);
  const cameraSelect =
    item.cameras.length > 1
      ? h(
          "select",
          { class: "usa-select", id: `${fileId}-camera`, name: `${fileId}-camera` },
          item.cameras.map((c, i) => h("option", { value: c.camera_id }, t("requests.camera_n", { n: i + 1 }))),
        )
      : null;
  const submit = h("button", { type: "submit", class: "usa-button" }, t("requests.upload"));
  const form = h(
    "form",
    { class: "usa-form portal-upload", novalidate: true },
    h("h3", {}, t("requests.upload_title")),
    summary,
    h(
      "div",
      { class: "usa-form-group", "data-field": fileId },
      h("label", { class: "usa-label", for: fileId }, t("requests.file")),
      h("div", { class: "usa-hint", id: `${fileId}-hint` }, t("requests.file_hint")),
      input,
    ),
    cameraSelect
      ? h("div", { class: "usa-form-group" }, h("label", { class: "usa-label", for: cameraSelect.id }, t("requests.camera")), cameraSelect)
      : null,
    progressBox,
    submit,
  );
  input.setAttribute("aria-describedby", `${fileId}-hint`);
  const send = async () => {
    const file = input.files?.[0];
    if (!file) {
      showErrors(form, summary, [{ field: fileId, message: t("requests.error_file") }]);
      return;
    }
    showErrors(form, summary, []);
    submit.disabled = true;
    progressBox.hidden = false;
    progressLabel.textContent = t("requests.hashing");
    const computed = await sha256Of(file, (read) => {
      progress.value = Math.round((read / Math.max(1, file.size)) * 100);
    });
    progressLabel.textContent = t("requests.uploading");
    progress.value = 0;
    const outcome = await uploadEvidence(
      item.request_id,
      credential,
      file,
      cameraSelect ? cameraSelect.value : (item.cameras[0]?.camera_id ?? null),
      (sent, total) => {
        progress.value = Math.round((sent / Math.max(1, total)) * 100);
      },
    );
    submit.disabled = false;
    if (!outcome.ok) {
      progressBox.hidden = true;
      // A file of a type the agency does not take, or too large: said of the file, in the resident's words (the
      // service's own sentence lists media types).
      const ofTheFile = FILE_PROBLEMS[outcome.failure.status];
      const errors = ofTheFile
        ? [{ field: fileId, message: t(ofTheFile) }]
        : errorsFromFailure(outcome.failure, { "/body/file": fileId });
      showErrors(form, summary, errors, outcome.failure.retryable ? () => void send() : undefined);
      return;
    }
    progressLabel.textContent = t("requests.uploaded");
    receipts.set(item.request_id, { computed, evidence: outcome.data });
    form.after(receiptBox(computed, outcome.data));
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void send();
  });
  return form;
}

function receiptBox(computed: string, evidence: Evidence): HTMLElement {
  const same = computed === evidence.sha256;
  return h(
    "div",
    { class: `usa-alert usa-alert--${same ? "success" : "error"} portal-receipt`, role: "status" },
    h(
      "div",
      { class: "usa-alert__body" },
      h("h3", { class: "usa-alert__heading" }, same ? t("requests.match") : t("requests.mismatch")),
      h(
        "dl",
        { class: "portal-details portal-hashes" },
        h("dt", {}, t("requests.hash_computed")),
        h("dd", {}, h("code", { "data-hash": "computed" }, computed)),
        h("dt", {}, t("requests.hash_received")),
        h("dd", {}, h("code", { "data-hash": "received" }, evidence.sha256)),
        h("dt", {}, t("requests.size")),
        h("dd", {}, t("requests.bytes", { n: formatNumber(evidence.size_bytes) })),
      ),
    ),
  );
}
