// WHIP publisher (RFC 9725): the browser's own RTCPeerConnection sends a camera or the screen to the relay, which
// registers it as a room member. No library, no CDN. Query parameters prefill the form: url, token, app, room, user,
// srcType, source, codec; autostart=1 publishes at once.
'use strict';

const $ = (id) => document.getElementById(id);
const q = new URLSearchParams(location.search);
for (const id of ['url', 'token', 'app', 'room', 'user', 'srcType', 'source', 'codec'])
  if (q.has(id)) $(id).value = q.get(id);

let pc = null;
let stream = null;
let sessionUrl = null;
let statsTimer = null;

function setState(state, detail) {
  const el = $('state');
  el.dataset.state = state;
  el.textContent = detail ? `${state}: ${detail}` : state;
}

function endpoint() {
  const url = $('url').value.trim();
  if (url) return url;
  const [app, room, user] = ['app', 'room', 'user'].map((id) => encodeURIComponent($(id).value.trim()));
  if (!app || !room || !user) throw new Error('give the WHIP URL, or sdkAppId, roomId and userId');
  return `${location.origin}/whip/${app}/${room}/${user}/${$('srcType').value}`;
}

async function capture() {
  if ($('source').value === 'screen') return navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
  return navigator.mediaDevices.getUserMedia({ video: { width: 1280, height: 720 }, audio: true });
}

// A chosen codec is put first and alone (its RTX beside it), so the browser cannot send another.
function preferCodec(transceiver, codec) {
  if (codec === 'auto' || !transceiver.setCodecPreferences) return;
  const all = RTCRtpSender.getCapabilities('video').codecs;
  const wanted = all.filter(
    (c) =>
      c.mimeType.toLowerCase() === `video/${codec}` &&
      (codec !== 'h264' || /packetization-mode=1/.test(c.sdpFmtpLine || '')),
  );
  if (!wanted.length) throw new Error(`this browser cannot send ${codec}`);
  transceiver.setCodecPreferences([...wanted, ...all.filter((c) => c.mimeType.toLowerCase() === 'video/rtx')]);
}

function gathered(peer, ms) {
  if (peer.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => peer.iceGatheringState === 'complete' && resolve();
    peer.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, ms);
  });
}

async function start() {
  const url = endpoint();
  setState('capturing');
  stream = await capture();
  $('preview').srcObject = stream;
  pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
  for (const track of stream.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    if (track.kind === 'video') preferCodec(t, $('codec').value);
  }
  pc.addEventListener('connectionstatechange', () => setState(pc.connectionState));
  await pc.setLocalDescription(await pc.createOffer());
  // no trickle ICE (the relay answers PATCH with 405): the offer carries every candidate
  await gathered(pc, 2000);
  setState('offering');
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${$('token').value.trim()}` },
    body: pc.localDescription.sdp,
  });
  const body = await res.text();
  if (res.status !== 201) {
    let reason = body;
    try {
      const j = JSON.parse(body);
      reason = `${j.code} ${j.message}${j.hint ? ` (${j.hint})` : ''}`;
    } catch {}
    throw Object.assign(new Error(`${res.status}: ${reason}`), { refused: true });
  }
  sessionUrl = new URL(res.headers.get('Location'), url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  setState(pc.connectionState);
  statsTimer = setInterval(showStats, 1000);
}

let last = null;
async function showStats() {
  if (!pc) return;
  const report = await pc.getStats();
  let out = null;
  const codecs = {};
  report.forEach((s) => {
    if (s.type === 'codec') codecs[s.id] = s.mimeType;
    if (s.type === 'outbound-rtp' && s.kind === 'video') out = s;
  });
  if (!out) return;
  const kbps = last ? Math.round(((out.bytesSent - last.bytesSent) * 8) / (out.timestamp - last.timestamp)) : 0;
  last = out;
  $('info').textContent =
    `session ${sessionUrl}\ncodec ${codecs[out.codecId] || '?'}  ${out.frameWidth || '?'}x${out.frameHeight || '?'}` +
    `  ${Math.round(out.framesPerSecond || 0)} fps  ${kbps} kbit/s  keyframes ${out.keyFramesEncoded ?? '?'}`;
}

async function stop(keepalive = false) {
  clearInterval(statsTimer);
  const url = sessionUrl;
  sessionUrl = null;
  if (url) await fetch(url, { method: 'DELETE', keepalive }).catch(() => undefined);
  pc?.close();
  pc = null;
  stream?.getTracks().forEach((t) => t.stop());
  stream = null;
  last = null;
}

$('form').addEventListener('submit', (e) => {
  e.preventDefault();
  $('start').disabled = true;
  $('stop').disabled = false;
  start().catch(async (err) => {
    await stop();
    setState(err.refused ? 'refused' : 'failed', err.message);
    $('start').disabled = false;
    $('stop').disabled = true;
  });
});
$('stop').addEventListener('click', () => {
  void stop().then(() => setState('stopped'));
  $('start').disabled = false;
  $('stop').disabled = true;
});
// closing the tab ends the session at once (the relay would also drop it after its idle timeout)
addEventListener('pagehide', () => void stop(true));
if (q.get('autostart') === '1') $('form').requestSubmit();
