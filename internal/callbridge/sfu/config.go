package sfu

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for the zero Config.
const (
	DefaultUDPAddr         = ":10000"
	DefaultConnectTimeout  = 30 * time.Second
	DefaultMaxSDPSize      = 64 << 10
	DefaultMaxPacketRate   = 3000       // packets per second per participant
	DefaultMaxBitRate      = 12_000_000 // bits per second per participant
	DefaultSpeakerHold     = 600 * time.Millisecond
	DefaultInitialBitrate  = 2_500_000
	DefaultKeyframeMinGap  = 300 * time.Millisecond
	DefaultSpeakerMinLevel = 60 // loudness 127-dBov: -67 dBov or louder counts as speech
)

// ICEServer is a STUN or TURN server for clients. The SFU does not use them itself (it is
// ICE-lite and has no need to discover its address); it carries them for the caller to pass
// to clients.
type ICEServer struct {
	// ID names where it comes from (the Call Bridge's turnServer id), for diagnostics; it
	// is not sent to clients.
	ID         string
	URLs       []string
	Username   string
	Credential string
}

// Config configures an SFU. The zero Config is valid: all media on UDP and TCP port 10000
// of every interface, host candidates with the interfaces' addresses, the defaults above.
type Config struct {
	// UDPAddr is the one UDP address all media of all participants use (ICE UDP mux).
	// Default ":10000": every interface, port 10000. Tests use "127.0.0.1:0". A loopback
	// address also enables loopback candidates.
	UDPAddr string
	// TCPAddr is the one TCP address for ICE-TCP (passive candidates, RFC 6544 framing);
	// default: UDPAddr's host and port on TCP. "off" disables ICE-TCP.
	TCPAddr string
	// PublicIPs are advertised in the candidates instead of the interfaces' addresses (a
	// 1:1 NAT, as on a cloud VM with an elastic IP). Ports are not rewritten: forward the
	// same port numbers.
	PublicIPs []string
	// ICEServers are carried for clients (see SFU.ICEServers); the SFU does not use them.
	ICEServers []ICEServer
	// ConnectTimeout is how long a participant has, from Join, to complete ICE and DTLS;
	// one that has not is removed (ErrConnectTimeout). Default 30 s.
	ConnectTimeout time.Duration
	// MaxSDPSize bounds a client's description in bytes (default 64 KiB).
	MaxSDPSize int
	// MaxPacketRate and MaxBitRate are each participant's budget for the media it sends
	// (token buckets with one second of burst). Excess packets are dropped and counted.
	// Defaults 3000 packets/s and 12 Mbit/s.
	MaxPacketRate, MaxBitRate int
	// InitialBitrate is the bandwidth estimate a subscriber starts with, before the
	// send-side estimator (GCC over transport-wide congestion control feedback) has data.
	// Default 2.5 Mbit/s (as Jitsi's videobridge starts): a camera's high layer with room
	// to spare. The estimate rises from it by 8 % a second at most, so a low start keeps an
	// unconstrained subscriber off the high layer for many seconds (from 1 Mbit/s, ten);
	// a narrower link brings it down at its first sign of congestion (GCC cuts it to 0.85
	// of the rate received).
	InitialBitrate int
	// SpeakerHold is how long a participant must stay the loudest before it becomes the
	// active speaker (default 600 ms).
	SpeakerHold time.Duration
	// KeyframeMinGap is the least time between two key frame requests (PLI) for one
	// simulcast layer (default 300 ms).
	KeyframeMinGap time.Duration
	// Logger receives the SFU's records and pion's warnings and errors (default discarded).
	Logger *slog.Logger
	// Metrics registers confab_sfu_* (default: not registered).
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.UDPAddr == "" {
		c.UDPAddr = DefaultUDPAddr
	}
	if c.TCPAddr == "" {
		c.TCPAddr = c.UDPAddr
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxSDPSize <= 0 {
		c.MaxSDPSize = DefaultMaxSDPSize
	}
	if c.MaxPacketRate <= 0 {
		c.MaxPacketRate = DefaultMaxPacketRate
	}
	if c.MaxBitRate <= 0 {
		c.MaxBitRate = DefaultMaxBitRate
	}
	if c.InitialBitrate <= 0 {
		c.InitialBitrate = DefaultInitialBitrate
	}
	if c.SpeakerHold <= 0 {
		c.SpeakerHold = DefaultSpeakerHold
	}
	if c.KeyframeMinGap <= 0 {
		c.KeyframeMinGap = DefaultKeyframeMinGap
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}
