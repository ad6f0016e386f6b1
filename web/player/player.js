// Viewer's test page of the bypass live relay: plays a pasted play URL (HLS with hls.js or natively, HTTP-FLV and
// WS-FLV with mpegts.js) or a channel id (its URLs come from /status/{channelId}), and shows state, bitrate,
// resolution, latency and the tiers. Links: ?url=<play URL> or ?channel=<id>[&pwd=<password>][&protocol=hls|flv|ws].
/* global Hls, mpegts */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const tierSelect = $('tier');
  const STATE_TEXT = {
    starting: 'starting',
    live: 'live',
    interrupted: 'interrupted',
    stopping: 'ended',
    stopped: 'ended',
    failed: 'ended',
    recycled: 'ended',
  };
  const TIER_NAME = { 0: 'original', 10: '550 kbit/s', 20: '900 kbit/s' };
  const CHANNEL_IN_PATH = /\/(?:hls|live)\/(ch_[0-9a-f]{20})(?:[/_.]|$)/;

  let gen = 0; // bumped by every start: async work of an older start stops there
  let session = null; // { channelId, origin, pwd, status, url, ended, seenStatus }
  let hls = null;
  let flv = null;
  let pollTimer = null;
  let fragKbps = null;

  const set = (id, text) => {
    $(id).textContent = text;
  };
  function message(text, isError = false) {
    set('message', text);
    $('message').className = isError ? 'error' : '';
  }
  function showPassword(show = true) {
    $('password-row').hidden = !show;
  }

  /** The URL with `pwd` set (or left out when there is none). */
  function withPwd(url, pwd) {
    const u = new URL(url);
    if (pwd) u.searchParams.set('pwd', pwd);
    else u.searchParams.delete('pwd');
    return u.toString();
  }
  const kindOf = (url) =>
    /\.m3u8$/i.test(new URL(url).pathname) ? 'hls' : /\.flv$/i.test(new URL(url).pathname) ? 'flv' : null;
  const httpOf = (url) => url.replace(/^ws(s?):/i, 'http$1:');

  function showState() {
    let text = '–';
    if (session?.ended) text = 'ended';
    else if (session?.status) text = STATE_TEXT[session.status.state] || session.status.state;
    else if (session && !video.paused && video.readyState > 2) text = 'live';
    set('state', text);
    $('state').className = text;
  }

  function stopEngines() {
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (flv) {
      flv.destroy();
      flv = null;
    }
    video.removeAttribute('src');
    video.load();
    fragKbps = null;
  }

  function reset() {
    stopEngines();
    clearInterval(pollTimer);
    session = null;
    fillTiers([]);
    for (const id of ['bitrate', 'resolution', 'latency', 'viewers', 'source']) set(id, id === 'source' ? '' : '–');
    message('');
    showState();
  }

  /** The channel's public status, or { code: 404 } / { code: 0 (unreachable) }. */
  async function fetchStatus(s) {
    try {
      const res = await fetch(`${s.origin}/status/${s.channelId}`, { cache: 'no-store' });
      return res.ok ? await res.json() : { code: res.status };
    } catch (e) {
      return { code: -1, message: e.message };
    }
  }

  /** Takes a status answer in; false when the channel is unknown or has ended (then nothing is to be played). */
  function applyStatus(s, st) {
    if (st.code === -1) {
      message(`status not reachable at ${s.origin}`, true);
      return true;
    }
    if (st.code !== 0) {
      if (s.seenStatus) s.ended = true;
      else message(st.code === 404 ? `no such channel: ${s.channelId}` : `status answered ${st.code}`, true);
      showState();
      return false;
    }
    s.seenStatus = true;
    s.status = st;
    set('viewers', String(st.viewers ?? '–'));
    if (st.passwordProtected) showPassword();
    showState();
    return STATE_TEXT[st.state] !== 'ended';
  }

  function poll(s, my) {
    clearInterval(pollTimer);
    pollTimer = setInterval(async () => {
      const st = await fetchStatus(s);
      if (my === gen) applyStatus(s, st);
    }, 2000);
  }

  /** Starts from the fields: the pasted URL if any, else the channel id. */
  async function start() {
    const my = ++gen;
    reset();
    const raw = $('url').value.trim();
    const channel = $('channel').value.trim();
    let pwd = $('password').value;
    let url = null;
    const s = {
      channelId: null,
      origin: location.origin,
      pwd: '',
      status: null,
      url: null,
      ended: false,
      seenStatus: false,
    };
    if (raw) {
      try {
        url = new URL(raw, location.href);
      } catch {
        return message('that is not a URL', true);
      }
      if (!kindOf(url.toString())) return message('paste an HLS (.m3u8) or FLV (.flv) play URL', true);
      if (!pwd && url.searchParams.get('pwd')) {
        pwd = url.searchParams.get('pwd');
        $('password').value = pwd;
        showPassword();
      }
      s.channelId = CHANNEL_IN_PATH.exec(url.pathname)?.[1] ?? null;
      s.origin = new URL(httpOf(url.toString())).origin;
      url = url.toString();
    } else if (channel) {
      s.channelId = channel;
      s.origin = new URLSearchParams(location.search).get('server') || location.origin;
    } else {
      return message('paste a play URL or enter a channel id', true);
    }
    s.pwd = pwd;
    session = s;
    if (s.channelId) {
      const st = await fetchStatus(s);
      if (my !== gen) return;
      const playable = applyStatus(s, st);
      if (st.code === 0 || s.seenStatus) poll(s, my);
      if (!playable) {
        if (st.code === 0) message('the live has ended');
        return;
      }
      if (!url) url = pickUrl(st.urls || [], $('protocol').value);
      if (!url) return message('this channel has no URL a browser can play (RTMP only)', true);
      if (st.passwordProtected && !pwd) {
        showPassword();
        $('password').focus();
        return message('this channel is password protected: enter the password and press Play');
      }
    }
    await play(url, my);
  }

  /** HLS: the master playlist (or the only one); FLV/WS-FLV: the first tier's FLV URL; else whatever a browser plays. */
  function pickUrl(urls, protocol) {
    const hlsUrl = (urls.find((u) => u.type === 1 && u.rateType === null) || urls.find((u) => u.type === 1))?.playUrl;
    const flvUrl = urls.find((u) => u.type === 2)?.playUrl;
    if (protocol !== 'hls' && flvUrl) return protocol === 'ws' ? flvUrl.replace(/^http/, 'ws') : flvUrl;
    return hlsUrl || flvUrl || null;
  }

  /** What the server says to this URL before a player opens it: 401/403/404 become messages. */
  async function probe(url) {
    const ctrl = new AbortController();
    try {
      const res = await fetch(httpOf(url), { signal: ctrl.signal, cache: 'no-store' });
      const body = res.ok ? null : await res.json().catch(() => null);
      ctrl.abort(); // an FLV stream would go on forever
      return { status: res.status, body };
    } catch (e) {
      return { status: 0, body: { message: e.message } };
    }
  }

  function refused(status, body) {
    const s = session;
    if (status === 401) {
      showPassword();
      message('password required: enter it and press Play', true);
    } else if (status === 403) {
      showPassword();
      message('wrong password', true);
      $('password').select();
    } else if (status === 404 && /ended/.test(body?.message || '')) {
      s.ended = true;
      message('the live has ended');
    } else message(`${status || 'network error'}: ${body?.message || 'cannot play this URL'}`, true);
    showState();
  }

  async function play(url, my) {
    const full = withPwd(url, session.pwd);
    let answer;
    for (let tries = 0; ; tries++) {
      // a channel just started may have no HLS playlist for a few seconds
      answer = await probe(full);
      if (my !== gen) return;
      if (answer.status !== 404 || !/playlist yet/.test(answer.body?.message || '') || tries >= 15) break;
      message('waiting for the stream…');
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (answer.status !== 200) return refused(answer.status, answer.body);
    session.url = url;
    set('source', url);
    message('');
    if (kindOf(url) === 'hls') playHls(full);
    else playFlv(full, url);
    video.play().catch(() => undefined);
  }

  function playHls(url) {
    if (window.Hls && Hls.isSupported()) {
      hls = new Hls({ liveSyncDurationCount: 3 });
      hls.on(Hls.Events.MANIFEST_PARSED, () =>
        fillTiers(
          hls.levels
            .map((l, i) => ({
              value: String(i),
              bitrate: l.bitrate,
              label: `${l.height ? `${l.height}p` : `level ${i}`}${l.bitrate ? ` · ${Math.round(l.bitrate / 1000)} kbit/s` : ''}`,
            }))
            .sort((a, b) => b.bitrate - a.bitrate),
          '-1',
        ),
      ); // best first, as the master playlist lists them
      hls.on(Hls.Events.FRAG_LOADED, (_e, d) => {
        if (d.frag.duration > 0 && d.frag.stats.loaded > 0)
          fragKbps = (d.frag.stats.loaded * 8) / d.frag.duration / 1000;
      });
      hls.on(Hls.Events.ERROR, (_e, d) => {
        if (!d.fatal) return;
        const status = d.response?.code ?? d.networkDetails?.status;
        if (status === 401 || status === 403) return refused(status, null);
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR) return hls.recoverMediaError();
        message(`HLS error: ${d.details}`, true);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      video.src = url; // Safari: native HLS, no tier choice
    } else {
      message('this browser cannot play HLS', true);
    }
  }

  function playFlv(full, url) {
    if (!window.mpegts || !mpegts.getFeatureList().mseLivePlayback)
      return message('this browser cannot play FLV (no MSE)', true);
    flv = mpegts.createPlayer(
      { type: 'flv', isLive: true, url: full },
      { enableStashBuffer: false, liveBufferLatencyChasing: true },
    );
    flv.on(mpegts.Events.ERROR, (type, detail, info) => {
      if (info && (info.code === 401 || info.code === 403)) return refused(info.code, null);
      message(`FLV error: ${type} ${detail}${info?.msg ? ` (${info.msg})` : ''}`, true);
    });
    flv.on(mpegts.Events.LOADING_COMPLETE, () => {
      if (session) {
        session.ended = true;
        showState();
      }
    });
    flv.attachMediaElement(video);
    flv.load();
    // Tiers of FLV are separate streams: the selector switches between the channel's FLV URLs (WS-FLV kept as ws).
    const toWs = (u) => (/^wss?:/i.test(url) ? u.replace(/^http/, 'ws') : u);
    const tiers = (session.status?.urls || [])
      .filter((u) => u.type === 2 && u.rateType !== null)
      .map((u) => ({ value: toWs(u.playUrl), label: TIER_NAME[u.rateType] || `rate ${u.rateType}` }));
    const here = new URL(url).pathname;
    fillTiers(tiers, tiers.find((t) => new URL(t.value).pathname === here)?.value);
  }

  /** Fills the tier selector; HLS gets "auto" first. It is only enabled with more than one tier. */
  function fillTiers(tiers, selected) {
    tierSelect.textContent = '';
    const options = hls && tiers.length ? [{ value: '-1', label: 'auto' }, ...tiers] : tiers;
    for (const t of options.length ? options : [{ value: '', label: '–' }])
      tierSelect.add(new Option(t.label, t.value));
    if (selected !== undefined) tierSelect.value = selected;
    tierSelect.disabled = tiers.length < 2;
  }

  tierSelect.addEventListener('change', () => {
    if (hls) {
      hls.currentLevel = Number(tierSelect.value);
      return;
    }
    if (flv && session && tierSelect.value) {
      const my = ++gen;
      const s = session;
      stopEngines();
      poll(s, my);
      void play(tierSelect.value, my);
    }
  });

  // Figures, once a second: bitrate, size, latency behind live.
  setInterval(() => {
    set('resolution', video.videoWidth ? `${video.videoWidth}x${video.videoHeight}` : '–');
    let kbps = null;
    let latency = null;
    if (hls) {
      const level = hls.levels[hls.currentLevel];
      kbps = fragKbps || level?.bitrate / 1000 || hls.bandwidthEstimate / 1000 || null;
      latency = Number.isFinite(hls.latency) && hls.latency > 0 ? hls.latency : null;
      if (hls.autoLevelEnabled && level && tierSelect.options[0]?.value === '-1')
        tierSelect.options[0].text = `auto (${level.height}p)`;
    } else if (flv) {
      const speed = flv.statisticsInfo?.speed;
      kbps = speed ? speed * 8 : null;
    }
    if (!hls && video.buffered.length) latency = video.buffered.end(video.buffered.length - 1) - video.currentTime;
    else if (!hls && video.seekable.length) latency = video.seekable.end(video.seekable.length - 1) - video.currentTime;
    set('bitrate', kbps ? `${Math.round(kbps)} kbit/s` : '–');
    set('latency', latency !== null && latency >= 0 ? `${latency.toFixed(1)} s` : '–');
    showState();
  }, 1000);

  video.addEventListener('ended', () => {
    if (session) {
      session.ended = true;
      showState();
    }
  });
  $('form').addEventListener('submit', (e) => {
    e.preventDefault();
    void start();
  });

  // Links: ?url=… or ?channel=…&pwd=…&protocol=…
  const q = new URLSearchParams(location.search);
  if (q.get('url')) $('url').value = q.get('url');
  if (q.get('channel')) $('channel').value = q.get('channel');
  if (q.get('pwd')) {
    $('password').value = q.get('pwd');
    showPassword();
  }
  if (['hls', 'flv', 'ws'].includes(q.get('protocol'))) $('protocol').value = q.get('protocol');
  if (q.get('url') || q.get('channel')) void start();
})();
