// The bedside dialog of the plan of care: the ward scanner types the wristband, then the dose,
// each followed by Enter, into the focused field; the five rights are checked by the server after
// each scan and shown; the outcome is recorded. Keyboard only: Enter scans, Tab reaches Record,
// Escape closes.
"use strict";

(() => {
  const dialog = document.getElementById("bedside");
  if (!dialog) return;
  const $ = (id) => document.getElementById(id);
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
  let current = null;

  const body = () => {
    const amount = $("bedside-amount").value;
    return {
      order_id: current.order,
      due_at: current.due || null,
      outcome: $("bedside-outcome").value,
      patient_scan: current.patientScan,
      dose_scan: current.doseScan,
      amount: amount ? Number(amount) : null,
      reason_code: $("bedside-reason-code").value || null,
      reason: $("bedside-reason").value || null,
      no_scan_reason: $("bedside-no-scan").value || null,
    };
  };

  const showChecks = (checks) => {
    const list = $("bedside-checks");
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

  const send = async (path) => {
    $("bedside-error").textContent = "";
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body()),
    });
    const data = await response.json().catch(() => ({}));
    showChecks(data.checks);
    if (!response.ok && !data.checks) $("bedside-error").textContent = data.detail || data.title || "";
    return response.ok;
  };

  const scanned = async (text) => {
    if (text.startsWith("P")) {  // a wristband (a new one replaces a wrong one)
      current.patientScan = text;
      $("scan-patient").textContent = text;
    } else {
      current.doseScan = text;
      $("scan-dose").textContent = text;
    }
    await send("/api/medication-administrations/checks");
    $("scan-input").focus();
  };

  const open = (button) => {
    const order = button.closest("tr").dataset;
    const patient = button.closest("section").dataset;
    current = { order: order.order, due: button.dataset.due, patientScan: null, doseScan: null };
    $("bedside-what").textContent = `${patient.patient} (IPP ${patient.ipp}) · ${order.product}`;
    $("bedside-form").reset();
    $("scan-patient").textContent = "—";
    $("scan-dose").textContent = "—";
    $("bedside-error").textContent = "";
    showChecks([]);
    dialog.showModal();
    $("scan-input").focus();
  };

  for (const button of document.querySelectorAll("button.give-dose")) {
    button.addEventListener("click", () => open(button));
  }
  $("scan-input").addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    const text = event.target.value.trim();
    event.target.value = "";
    if (text) scanned(text);
  });
  $("bedside-record").addEventListener("click", async () => {
    if (await send("/api/medication-administrations")) {
      dialog.close();
      window.location.reload();
    }
  });
  $("bedside-cancel").addEventListener("click", () => dialog.close());
})();
