/* Teleconsultation room: WebRTC audio and video peer to peer, signalling over naho's websocket,
 * chat, documents over the data channel, a connection-quality indicator, reconnection.
 * Plain browser APIs, no library. Texts come translated from the page (data-texts).
 * The practitioner makes the offers; the patient answers (no glare to resolve). */
(function () {
  "use strict";
  var root = document.getElementById("room");
  if (!root) { return; }
  var role = root.dataset.role;
  var texts = JSON.parse(root.dataset.texts);
  var iceServers = JSON.parse(root.dataset.ice);
  var practitioner = role === "practitioner";
  var MAX_FILE = 10 * 1024 * 1024;
  var CHUNK = 16 * 1024;
  var FILE_TYPES = ["application/pdf", "image/png", "image/jpeg"];

  var ws = null;
  var pc = null;
  var channel = null;
  var localStream = null;
  var pendingCandidates = [];
  var state = { admitted: false, patient: false, practitioner: false, ended: false };
  var leaving = false;
  var retries = 0;
  var statsTimer = null;
  var lastStats = null;
  var disconnectTimer = null;
  var incoming = null;
  /* The media path worked once (a later loss is a reconnection); the other participant left. */
  var mediaOnce = false;
  var peerLeft = false;

  function $(id) { return document.getElementById(id); }

  function setStatus(key) {
    root.dataset.status = key;
    $("status").textContent = texts[key] || "";
  }

  function showError(message) { $("room-error").textContent = message || ""; }

  function send(message) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(message)); }
  }

  /* --- media ------------------------------------------------------------------------------- */

  function startMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showError(texts["no-camera"]);
      return Promise.resolve(null);
    }
    return navigator.mediaDevices.getUserMedia({ audio: true, video: true }).then(function (stream) {
      localStream = stream;
      $("local-video").srcObject = stream;
      return stream;
    }).catch(function () {
      showError(texts["no-camera"]);
      return null;
    });
  }

  /* --- peer connection --------------------------------------------------------------------- */

  function closePeer() {
    if (channel) { try { channel.close(); } catch (e) { /* already closed */ } }
    if (pc) { pc.close(); }
    pc = null;
    channel = null;
    pendingCandidates = [];
    $("remote-video").srcObject = null;
    root.dataset.call = "none";
    setQuality(null);
  }

  function newPeer() {
    closePeer();
    pc = new RTCPeerConnection({ iceServers: iceServers });
    if (localStream) {
      localStream.getTracks().forEach(function (track) { pc.addTrack(track, localStream); });
    } else {
      pc.addTransceiver("audio", { direction: "recvonly" });
      pc.addTransceiver("video", { direction: "recvonly" });
    }
    pc.onicecandidate = function (event) {
      if (event.candidate) { send({ type: "signal", data: { candidate: event.candidate.toJSON() } }); }
    };
    pc.ontrack = function (event) {
      var video = $("remote-video");
      var stream = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
      if (video.srcObject !== stream) {
        video.srcObject = stream;
        var playing = video.play();
        if (playing && playing.catch) { playing.catch(function () { /* autoplay refused: controls */ }); }
      }
      root.dataset.call = "media";
    };
    pc.oniceconnectionstatechange = function () { onIceState(pc ? pc.iceConnectionState : "closed"); };
    pc.ondatachannel = function (event) { useChannel(event.channel); };
    if (practitioner) { useChannel(pc.createDataChannel("documents", { ordered: true })); }
    return pc;
  }

  function offer(fresh) {
    if (!fresh && pc) {
      return negotiate({ iceRestart: true }, false);
    }
    newPeer();
    return negotiate({}, true);
  }

  function negotiate(options, fresh) {
    var peer = pc;
    return peer.createOffer(options).then(function (description) {
      return peer.setLocalDescription(description);
    }).then(function () {
      send({ type: "signal", data: { description: peer.localDescription.toJSON(), fresh: fresh } });
    }).catch(function (error) { showError(String(error)); });
  }

  function onSignal(data) {
    if (!data) { return; }
    /* The patient's side lost the path: restart ICE, whatever this side sees. */
    if (data.restart && practitioner) { if (pc) { count("iceRestarts"); offer(false); } return; }
    if (data.description) {
      var description = data.description;
      if (description.type === "offer") {
        if (data.fresh || !pc) { newPeer(); }
        var peer = pc;
        peer.setRemoteDescription(description).then(function () {
          flushCandidates();
          return peer.createAnswer();
        }).then(function (answer) {
          return peer.setLocalDescription(answer);
        }).then(function () {
          send({ type: "signal", data: { description: peer.localDescription.toJSON() } });
        }).catch(function (error) { showError(String(error)); });
      } else if (pc) {
        pc.setRemoteDescription(description).then(flushCandidates).catch(function (error) { showError(String(error)); });
      }
    } else if (data.candidate) {
      if (pc && pc.remoteDescription) {
        pc.addIceCandidate(data.candidate).catch(function () { /* a candidate of an old round */ });
      } else {
        pendingCandidates.push(data.candidate);
      }
    }
  }

  function flushCandidates() {
    var queued = pendingCandidates;
    pendingCandidates = [];
    queued.forEach(function (candidate) { pc.addIceCandidate(candidate).catch(function () {}); });
  }

  /* A network drop: ICE restart on the same connection (the practitioner offers; the patient asks). */
  function onIceState(value) {
    root.dataset.iceState = value;
    if (value === "connected" || value === "completed") {
      clearTimeout(disconnectTimer);
      mediaOnce = true;
      showStatus();
      startStats();
      return;
    }
    if (value === "failed") { restartIce(); }
    if (value === "disconnected") {
      clearTimeout(disconnectTimer);
      disconnectTimer = setTimeout(function () {
        if (pc && pc.iceConnectionState === "disconnected") { restartIce(); }
      }, 3000);
    }
  }

  function count(name) { root.dataset[name] = String(Number(root.dataset[name] || 0) + 1); }

  function iceUp() {
    return pc !== null && (pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed");
  }

  function restartIce() {
    if (state.ended || leaving || iceUp()) { return; }  /* it may have come back on its own */
    count("iceRestarts");
    showStatus();
    if (practitioner) { offer(false); } else { send({ type: "signal", data: { restart: true } }); }
  }

  /* --- connection quality (RTT and packet loss from getStats) ------------------------------- */

  function classify(rtt, loss) {
    if (rtt === null && loss === null) { return null; }
    if ((rtt || 0) < 0.15 && (loss || 0) < 0.02) { return "good"; }
    if ((rtt || 0) < 0.4 && (loss || 0) < 0.08) { return "average"; }
    return "poor";
  }

  function setQuality(level) {
    var element = $("quality");
    element.dataset.quality = level || "unknown";
    element.textContent = level ? texts["quality-" + level] : "";
  }

  function startStats() {
    if (statsTimer) { return; }
    statsTimer = setInterval(function () {
      if (!pc) { return; }
      pc.getStats().then(function (report) {
        var rtt = null;
        var received = 0;
        var lost = 0;
        var frames = 0;
        report.forEach(function (stat) {
          if (stat.type === "candidate-pair" && stat.nominated && stat.state === "succeeded" &&
              typeof stat.currentRoundTripTime === "number") {
            rtt = stat.currentRoundTripTime;
          }
          if (stat.type === "inbound-rtp") {
            received += stat.packetsReceived || 0;
            lost += stat.packetsLost || 0;
            if (stat.kind === "video") { frames += stat.framesDecoded || 0; }
          }
        });
        var loss = null;
        if (lastStats) {
          var newReceived = received - lastStats.received;
          var newLost = Math.max(0, lost - lastStats.lost);
          loss = newReceived + newLost > 0 ? newLost / (newReceived + newLost) : null;
        }
        lastStats = { received: received, lost: lost };
        root.dataset.framesDecoded = String(frames);
        setQuality(classify(rtt, loss));
      });
    }, 2000);
  }

  /* --- documents over the data channel ----------------------------------------------------- */

  function useChannel(dc) {
    channel = dc;
    dc.binaryType = "arraybuffer";
    dc.onopen = function () { $("file-input").disabled = false; };
    dc.onclose = function () { $("file-input").disabled = true; };
    dc.onmessage = function (event) {
      if (typeof event.data === "string") {
        var header = JSON.parse(event.data);
        if (header.start) {
          incoming = { name: header.name, type: header.type, size: header.size, parts: [], got: 0 };
        } else if (header.done && incoming) {
          receiveFile(incoming);
          incoming = null;
        }
      } else if (incoming) {
        incoming.got += event.data.byteLength;
        if (incoming.got > MAX_FILE) { incoming = null; return; }
        incoming.parts.push(event.data);
      }
    };
  }

  function safeName(name) { return String(name || "document").replace(/[^\w.\- ]+/g, "_").slice(0, 120); }

  function listFile(label, name, url) {
    var item = document.createElement("li");
    item.textContent = label + " ";
    if (url) {
      var link = document.createElement("a");
      link.href = url;
      link.download = name;
      link.textContent = name;
      item.appendChild(link);
    } else {
      item.appendChild(document.createTextNode(name));
    }
    $("files").appendChild(item);
  }

  function receiveFile(file) {
    /* Only the accepted types, offered for download (never shown inline). */
    var type = FILE_TYPES.indexOf(file.type) >= 0 ? file.type : "application/octet-stream";
    var blob = new Blob(file.parts, { type: type });
    listFile(texts["file-received"], safeName(file.name), URL.createObjectURL(blob));
  }

  function sendFile(file) {
    if (!channel || channel.readyState !== "open") { return; }
    if (FILE_TYPES.indexOf(file.type) < 0 || file.size > MAX_FILE) {
      showError(texts["file-refused"]);
      return;
    }
    showError("");
    var name = safeName(file.name);
    channel.send(JSON.stringify({ start: true, name: name, type: file.type, size: file.size }));
    file.arrayBuffer().then(function (buffer) {
      var offset = 0;
      channel.bufferedAmountLowThreshold = CHUNK * 8;
      function pump() {
        while (offset < buffer.byteLength) {
          if (channel.bufferedAmount > CHUNK * 64) {
            channel.onbufferedamountlow = function () { channel.onbufferedamountlow = null; pump(); };
            return;
          }
          channel.send(buffer.slice(offset, offset + CHUNK));
          offset += CHUNK;
        }
        channel.send(JSON.stringify({ done: true }));
        send({ type: "file", name: name, size: file.size });
        listFile(texts["file-sent"], name, null);
      }
      pump();
    });
  }

  /* --- the signalling websocket ------------------------------------------------------------ */

  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + root.dataset.socket);
    ws.onopen = function () { retries = 0; count("socketOpens"); showStatus(); };
    ws.onmessage = function (event) { onMessage(JSON.parse(event.data)); };
    ws.onclose = function (event) {
      if (leaving || state.ended || event.code === 1008 || event.code === 4000) {
        if (event.code === 1008) { showError(texts["unavailable"]); }
        return;
      }
      retries += 1;
      showStatus();
      /* About two minutes of refused handshakes (signed out, room closed): give up, say so. */
      if (retries > 15) { showError(texts["unavailable"]); return; }
      setTimeout(connect, Math.min(10000, 500 * Math.pow(2, retries)));
    };
  }

  function onMessage(message) {
    if (message.type === "state") { onState(message); }
    else if (message.type === "signal") { onSignal(message.data); }
    else if (message.type === "peer-joined") {
      root.dataset.peer = "present";
      /* The patient came back (a reload, a new network): a fresh call. */
      if (practitioner && state.admitted) { offer(true); }
    } else if (message.type === "peer-left") {
      root.dataset.peer = "left";
      state[message.role] = false;
      peerLeft = true;
      closePeer();
      showStatus();
    } else if (message.type === "chat") { addChat(message); }
    else if (message.type === "error") { showError(message.message); }
  }

  /* What the status line says, from the room's state, the websocket and the media path. */
  function showStatus() {
    if (leaving || state.ended) { setStatus("ended"); return; }
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      if (retries > 0) { setStatus("reconnecting"); }
      return;
    }
    var peerHere = practitioner ? state.patient : state.practitioner;
    if (!state.admitted) {
      setStatus(practitioner ? (state.patient ? "patient-waiting" : "patient-absent") : "waiting");
    } else if (!peerHere) {
      setStatus(peerLeft ? "peer-left" : (practitioner ? "patient-absent" : "waiting"));
    } else {
      setStatus(!iceUp() && mediaOnce ? "reconnecting" : "in-call");
    }
  }

  function onState(message) {
    state = message;
    if (state.ended) {
      showStatus();
      closePeer();
      if (ws) { ws.close(); }
      return;
    }
    root.dataset.peer = (practitioner ? state.patient : state.practitioner) ? "present" : "absent";
    $("chat-text").disabled = !state.admitted;
    if (practitioner) {
      $("admit").disabled = state.admitted || !state.patient;
      $("identity").checked = state.identity;
      $("consent").checked = state.consent;
      $("identity").disabled = !state.admitted || state.identity;
      $("consent").disabled = !state.admitted || state.consent;
      $("end").disabled = !(state.admitted && state.identity && state.consent);
      if (state.admitted && state.patient &&
          (!pc || pc.connectionState === "failed" || pc.connectionState === "closed")) {
        offer(true);
      }
    }
    showStatus();
  }

  function addChat(message) {
    var item = document.createElement("li");
    var who = message.from === role ? texts["you"] : texts[message.from];
    item.textContent = who + " : " + message.text;
    $("chat-log").appendChild(item);
  }

  /* --- controls ---------------------------------------------------------------------------- */

  $("chat-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("chat-text");
    if (input.value.trim()) { send({ type: "chat", text: input.value }); }
    input.value = "";
  });
  $("file-input").addEventListener("change", function (event) {
    var file = event.target.files && event.target.files[0];
    if (file) { sendFile(file); }
    event.target.value = "";
  });
  $("leave").addEventListener("click", function () {
    leaving = true;
    closePeer();
    if (ws) { ws.close(1000); }
    if (localStream) { localStream.getTracks().forEach(function (track) { track.stop(); }); }
    showStatus();
  });
  if (practitioner) {
    $("admit").addEventListener("click", function () { send({ type: "admit" }); });
    $("identity").addEventListener("change", function (event) { if (event.target.checked) { send({ type: "identity" }); } });
    $("consent").addEventListener("change", function (event) { if (event.target.checked) { send({ type: "consent" }); } });
    $("end").addEventListener("click", function () { send({ type: "end", note: $("note").value }); });
  }

  startMedia().then(connect);
})();
