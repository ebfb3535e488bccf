"""Settings of the media path (section ``[media]``).

Every value has a default that works against a local Asterisk; ``validate()`` rejects values
that would make the media path misbehave (it is called by ``convener.settings.load_section``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from convener.settings import ConfigError


@dataclass
class MediaSettings:
    # rtp (UDP), websocket (chan_websocket, Asterisk 22.6+) or audiosocket (TCP; chan_audiosocket,
    # signed linear: ulaw legs are carried as 8 kHz slin).
    transport: Literal["rtp", "websocket", "audiosocket"] = "rtp"
    # Format Asterisk sends us: ulaw (8 kHz) or slin16 (16 kHz signed linear).
    format: Literal["ulaw", "slin16"] = "ulaw"
    # Address Asterisk sends RTP to (ours); ports are taken from this range, one socket per call.
    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    # RTP payload type Asterisk uses for slin16 (dynamic; Asterisk's static mapping uses 118).
    # ulaw is always the static payload type 0.
    rtp_slin16_payload_type: int = 118

    # --- inbound (caller audio) ---------------------------------------------------------------
    # Reorder window: a missing packet is waited for until this many later packets arrived or
    # jitter_max_wait_ms passed, whichever comes first; then it is declared lost.
    jitter_depth_packets: int = 3
    jitter_max_wait_ms: int = 60
    # What replaces a lost packet: "repeat" repeats the previous frame once (then silence),
    # "silence" inserts silence, "none" leaves a gap in the frame stream.
    jitter_conceal: Literal["repeat", "silence", "none"] = "repeat"
    # Flood guard: packets per second accepted from Asterisk (it sends 50/s); a token bucket of
    # inbound_burst_packets absorbs bursts. Excess is dropped before parsing and counted.
    inbound_max_pps: int = 150
    inbound_burst_packets: int = 50
    # Only the first SSRC is accepted; another SSRC (from Asterisk's own address) takes over
    # only after the current one was silent this long (Asterisk picks a new SSRC when the
    # bridged source changes, e.g. on re-bridging; a second concurrent stream stays ignored).
    rtp_ssrc_switch_ms: int = 500
    # Decoded frames waiting for the consumer; the oldest is dropped (and counted) beyond this.
    inbound_queue_frames: int = 100
    # Packets that arrive before Asterisk's address is known are held (up to this many) and
    # replayed once ``set_remote()`` names the sender; the rest are dropped and counted.
    pre_remote_hold_packets: int = 25

    # --- outbound (replies) -------------------------------------------------------------------
    # Audio buffered before the first frame of a reply goes out (absorbs TTS chunk jitter).
    pacer_warmup_ms: int = 40
    # A frame sent later than this after its deadline is counted (and logged) as late.
    pacer_late_ms: float = 5.0
    # Outbound frames buffered for a websocket leg while Asterisk says MEDIA_XOFF.
    ws_send_queue_frames: int = 100
    ws_connect_timeout_s: float = 5.0

    # --- turn detection -----------------------------------------------------------------------
    vad_threshold: float = 0.5
    # Once speaking, frames stay "speech" down to vad_threshold - vad_hysteresis.
    vad_hysteresis: float = 0.15
    turn_preroll_ms: int = 300
    turn_min_speech_ms: int = 100
    # Silence that ends a turn when no turn-completion model is available (the fallback).
    turn_hangover_ms: int = 500
    # End of turn by completion: after turn_stop_ms of silence the completion model decides;
    # "complete" answers at once, "incomplete" keeps listening until the caller speaks again or
    # turn_incomplete_wait_ms of silence passed. Lower turn_stop_ms answers sooner; a longer
    # turn_incomplete_wait_ms is more patient with hesitating callers.
    # turn_completion: "text" (classifier on the speculative transcript), "smart-turn" (audio
    # model; needs the turn-audio extra), "both" (complete only when both agree), "auto" (text
    # when the recogniser gives transcripts, else smart-turn if installed), or "off" (fixed
    # hang-over only).
    turn_completion: Literal["auto", "text", "smart-turn", "both", "off"] = "auto"
    turn_stop_ms: int = 200
    # The first look counts the stop from where the voice's level fell, not from where the VAD's
    # probability did (it trails by ~100-150 ms): up to this much of the VAD's last "speech" may
    # count as silence when it is as quiet as the line's floor. 0 = from the VAD's end only.
    turn_energy_end_ms: int = 150
    turn_incomplete_wait_ms: int = 2000
    # The second look: after an "incomplete" decision, once this much silence has passed the
    # turn ends unless the transcript ends on a strongly unfinished word (article, preposition,
    # conjunction, "to"/"too", "um"/"uh", a trailing comma); those wait on up to
    # turn_incomplete_wait_ms. The longer the silence, the lower the bar. Set it to
    # turn_incomplete_wait_ms to wait the full time on every "incomplete".
    turn_uncertain_wait_ms: int = 800
    # The look for words heard badly (below turn_min_confidence): once this much silence has
    # passed, such a turn ends unless its words end on a strongly unfinished one. Pauses inside a
    # turn rarely run past about a second; before this look, a doubted transcript waited the full
    # turn_incomplete_wait_ms. Set it to turn_incomplete_wait_ms for that. It comes no sooner than
    # the second look and no later than turn_incomplete_wait_ms (a value outside is moved there).
    turn_doubt_wait_ms: int = 1200
    # A later look (the second or the doubt look) that finds the caller finished ends the turn
    # only after this much more silence, and not if the line's level says the caller is starting
    # again: the VAD hears a word that begins with a fricative ("sleeps") tens of ms late.
    # 0 = at once.
    turn_confirm_ms: int = 60
    # Probability of "the caller has finished" at or above which the turn ends (both models).
    turn_complete_threshold: float = 0.5
    # Words recognised with a confidence below this do not end a turn at the first look (a
    # misheard fragment often reads as a finished sentence), nor at the second look; they are
    # read at turn_doubt_wait_ms. 0 = trust every transcript.
    turn_min_confidence: float = 0.55
    # The same for the last word alone (its probability, where the recogniser gives one: Whisper
    # does): a fragment misheard as a finished sentence often ends on a guessed word ("Show me
    # flight 2.", "… from off to non?") while the rest was heard well. 0 = not used.
    turn_min_last_word_confidence: float = 0.4
    # Words that no agent fits as a first request ("none of our agents can help") do not end a
    # turn at the first look: the caller may not have finished ("Get me on the first." | "flight
    # to Atlanta."), or was misheard; the second look (turn_uncertain_wait_ms) decides as for
    # any "incomplete". Words for the agent holding the floor never wait for this.
    turn_unrouted_waits: bool = True
    turn_max_utterance_ms: int = 30000
    # Silences inside an utterance longer than this are shortened to it in the audio the
    # recogniser (and an audio turn model) gets (half kept after the words before, the rest
    # before the words after; "silence" is the VAD's, below its low threshold): Whisper
    # often stops at a long pause and drops what follows ("Is it going to rain in? ..."), and a
    # caller who hesitated is one turn. 0 = the audio as heard.
    turn_asr_max_gap_ms: int = 300
    # Trailing silence kept at the end of an emitted utterance (the rest of the hang-over is cut).
    turn_tail_ms: int = 200

    def validate(self) -> None:
        if self.transport == "audiosocket" and self.format != "ulaw":
            raise ConfigError("format: AudioSocket carries 8 kHz signed linear only; use format = "
                              "\"ulaw\" with transport = \"audiosocket\" (Asterisk 22 sent no audio "
                              "for slin16)")
        if not 1024 <= self.rtp_port_min <= self.rtp_port_max <= 65535:
            raise ConfigError(
                "rtp_port_min: must satisfy 1024 <= rtp_port_min <= rtp_port_max <= 65535"
            )
        if not 96 <= self.rtp_slin16_payload_type <= 127:
            raise ConfigError("rtp_slin16_payload_type: must be a dynamic payload type (96-127)")
        if not 0 <= self.jitter_depth_packets <= 50:
            raise ConfigError("jitter_depth_packets: must be between 0 and 50")
        if not 0 <= self.jitter_max_wait_ms <= 1000:
            raise ConfigError("jitter_max_wait_ms: must be between 0 and 1000")
        for name in ("inbound_max_pps", "inbound_burst_packets", "inbound_queue_frames",
                     "ws_send_queue_frames"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1")
        if not 40 <= self.rtp_ssrc_switch_ms <= 60000:
            raise ConfigError("rtp_ssrc_switch_ms: must be between 40 and 60000")
        if self.pre_remote_hold_packets < 0:
            raise ConfigError("pre_remote_hold_packets: must be >= 0")
        if not 0 <= self.pacer_warmup_ms <= 1000:
            raise ConfigError("pacer_warmup_ms: must be between 0 and 1000")
        if self.pacer_late_ms <= 0:
            raise ConfigError("pacer_late_ms: must be > 0")
        if self.ws_connect_timeout_s <= 0:
            raise ConfigError("ws_connect_timeout_s: must be > 0")
        if not 0.0 < self.vad_threshold < 1.0:
            raise ConfigError("vad_threshold: must be between 0 and 1 (exclusive)")
        if not 0.0 <= self.vad_hysteresis < self.vad_threshold:
            raise ConfigError("vad_hysteresis: must be >= 0 and below vad_threshold")
        for name in ("turn_preroll_ms", "turn_min_speech_ms", "turn_tail_ms"):
            if not 0 <= getattr(self, name) <= 5000:
                raise ConfigError(f"{name}: must be between 0 and 5000")
        if not 20 <= self.turn_hangover_ms <= 10000:
            raise ConfigError("turn_hangover_ms: must be between 20 and 10000")
        if not 0 <= self.turn_energy_end_ms <= 500:
            raise ConfigError("turn_energy_end_ms: must be between 0 and 500")
        if not 60 <= self.turn_stop_ms <= 2000:
            raise ConfigError("turn_stop_ms: must be between 60 and 2000")
        if not self.turn_stop_ms < self.turn_incomplete_wait_ms <= 10000:
            raise ConfigError("turn_incomplete_wait_ms: must be above turn_stop_ms and at most 10000")
        if not self.turn_stop_ms < self.turn_uncertain_wait_ms <= self.turn_incomplete_wait_ms:
            raise ConfigError("turn_uncertain_wait_ms: must be above turn_stop_ms and at most turn_incomplete_wait_ms")
        if self.turn_asr_max_gap_ms != 0 and not 100 <= self.turn_asr_max_gap_ms <= 5000:
            raise ConfigError("turn_asr_max_gap_ms: must be 0 (off) or between 100 and 5000")
        if not 0 <= self.turn_confirm_ms <= 500:
            raise ConfigError("turn_confirm_ms: must be between 0 and 500")
        if not self.turn_stop_ms < self.turn_doubt_wait_ms <= 10000:
            raise ConfigError("turn_doubt_wait_ms: must be above turn_stop_ms and at most 10000")
        if not 0.0 < self.turn_complete_threshold < 1.0:
            raise ConfigError("turn_complete_threshold: must be between 0 and 1 (exclusive)")
        if not 0.0 <= self.turn_min_confidence < 1.0:
            raise ConfigError("turn_min_confidence: must be between 0 and 1")
        if not 0.0 <= self.turn_min_last_word_confidence < 1.0:
            raise ConfigError("turn_min_last_word_confidence: must be between 0 and 1")
        if self.turn_max_utterance_ms < 1000:
            raise ConfigError("turn_max_utterance_ms: must be at least 1000")
