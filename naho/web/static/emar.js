// The bedside dialogs of the plan of care: the ward scanner types the wristband, then the dose,
// each followed by Enter, into the focused field; the five rights are checked by the server after
// each scan and shown; the outcome is recorded. Continuous infusions are started, changed and
// stopped the same way. Keyboard only: Enter scans, Tab reaches Record, Escape closes.
"use strict";

// A scan field inside a form: the scanner's Enter moves to the next field instead of submitting.
for (const input of document.querySelectorAll("input[data-scan-next]")) {
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    document.getElementById(input.dataset.scanNext).focus();
  });
}

(() => {
  const $ = (id) => document.getElementById(id);
  if (!$("bedside")) return;
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  const number = (id) => ($(id).value ? Number($(id).value) : null);
  const text = (id) => $(id).value || null;

  const showChecks = (list, checks) => {
    list.replaceChildren();
    for (const check of checks || []) {
      const item = document.createElement("li");
      item.dataset.right = check.right;
      item.dataset.state = check.passed ? "ok" : check.blocking ? "blocking" : "warning";
      item.className = "alert " + (check.passed ? "alert-success" : check.blocking ? "alert-error" : "alert-warning");
      item.textContent = check.message;
      list.append(item);
    }
  };

  // POST the body as JSON; show the checks answered (or the error); true when accepted.
  const post = async (path, body, checks, error) => {
    error.textContent = "";
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    showChecks(checks, data.checks);
    if (!response.ok && !data.checks) error.textContent = data.detail || data.title || "";
    return response.ok;
  };

  // A scan field: Enter hands the code to `scanned`; a code starting with P is a wristband.
  const onScan = (input, state, shown, after) => {
    input.addEventListener("keydown", async (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      const code = input.value.trim();
      input.value = "";
      if (!code) return;
      const which = code.startsWith("P") ? "patientScan" : "doseScan";  // a new wristband replaces a wrong one
      state()[which] = code;
      $(shown[which]).textContent = code;
      if (after) await after();
      input.focus();
    });
  };

  const describe = (button) => {
    const order = button.closest("tr").dataset;
    const patient = button.closest("section").dataset;
    return { order: order.order, text: `${patient.patient} (IPP ${patient.ipp}) · ${order.product}` };
  };

  const reset = (form, shown) => {
    form.reset();
    for (const id of Object.values(shown)) $(id).textContent = "—";
  };

  // --- a due dose ---
  const dose = { dialog: $("bedside"), current: null, shown: { patientScan: "scan-patient", doseScan: "scan-dose" } };
  const doseBody = () => ({
    order_id: dose.current.order,
    due_at: dose.current.due || null,
    outcome: $("bedside-outcome").value,
    patient_scan: dose.current.patientScan,
    dose_scan: dose.current.doseScan,
    amount: number("bedside-amount"),
    reason_code: text("bedside-reason-code"),
    reason: text("bedside-reason"),
    no_scan_reason: text("bedside-no-scan"),
  });
  const sendDose = (path) => post(path, doseBody(), $("bedside-checks"), $("bedside-error"));

  for (const button of document.querySelectorAll("button.give-dose")) {
    button.addEventListener("click", () => {
      const what = describe(button);
      dose.current = { order: what.order, due: button.dataset.due, patientScan: null, doseScan: null };
      $("bedside-what").textContent = what.text;
      reset($("bedside-form"), dose.shown);
      showChecks($("bedside-checks"), []);
      $("bedside-error").textContent = "";
      dose.dialog.showModal();
      $("scan-input").focus();
    });
  }
  onScan($("scan-input"), () => dose.current, dose.shown, () => sendDose("/api/medication-administrations/checks"));
  $("bedside-record").addEventListener("click", async () => {
    if (await sendDose("/api/medication-administrations")) {
      dose.dialog.close();
      window.location.reload();
    }
  });
  $("bedside-cancel").addEventListener("click", () => dose.dialog.close());

  // --- a continuous infusion ---
  const infusion = { dialog: $("infusion"), current: null, shown: { patientScan: "infusion-patient", doseScan: "infusion-dose" } };
  for (const button of document.querySelectorAll("button.infusion-action")) {
    button.addEventListener("click", () => {
      const what = describe(button);
      const kind = button.dataset.kind;
      infusion.current = { order: what.order, kind, patientScan: null, doseScan: null };
      $("infusion-what").textContent = `${button.textContent} · ${what.text}`;
      reset($("infusion-form"), infusion.shown);
      showChecks($("infusion-checks"), []);
      $("infusion-error").textContent = "";
      const scans = kind === "infusion_start" || kind === "bag_change";
      const rate = kind === "infusion_start" || kind === "rate_change";
      for (const el of document.querySelectorAll("#infusion .infusion-scans")) el.hidden = !scans;
      for (const el of document.querySelectorAll("#infusion .infusion-rate")) el.hidden = !rate;
      infusion.dialog.showModal();
      (scans ? $("infusion-scan") : rate ? $("infusion-dose-rate") : $("infusion-reason")).focus();
    });
  }
  onScan($("infusion-scan"), () => infusion.current, infusion.shown, null);
  $("infusion-record").addEventListener("click", async () => {
    const current = infusion.current;
    const body = {
      kind: current.kind, dose_rate: number("infusion-dose-rate"), rate_ml_h: number("infusion-ml-h"),
      bag_volume_ml: number("infusion-bag"), patient_scan: current.patientScan, dose_scan: current.doseScan,
      no_scan_reason: text("infusion-no-scan"), reason: text("infusion-reason"),
    };
    if (await post(`/api/medication-orders/${current.order}/infusion-events`, body, $("infusion-checks"), $("infusion-error"))) {
      infusion.dialog.close();
      window.location.reload();
    }
  });
  $("infusion-cancel").addEventListener("click", () => infusion.dialog.close());
})();
