package sfutest

import (
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
)

// repairedRID makes the client's retransmissions of a simulcast layer carry the layer in
// the repaired-rtp-stream-id header extension, as browsers send them, instead of the
// rtp-stream-id that pion's NACK responder copies from the original packet. A receiver
// that sees an rtp-stream-id on the RTX SSRC takes it for the layer's new primary SSRC:
// pion rebinds the layer's track to it (RTPReceiver.receiveForRid), and the layer's media,
// still on the old SSRC, no longer reaches the reader. The interceptor sits closest to the
// wire, after the NACK responder.
type repairedRID struct{ interceptor.NoOp }

type repairedRIDFactory struct{}

func (repairedRIDFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &repairedRID{}, nil
}

func (*repairedRID) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	if info.SSRCRetransmission == 0 {
		return w
	}
	var ridID, rridID uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		case sdp.SDESRepairRTPStreamIDURI:
			rridID = uint8(e.ID)
		}
	}
	if ridID == 0 {
		return w
	}
	rtx := info.SSRCRetransmission
	return interceptor.RTPWriterFunc(func(h *rtp.Header, p []byte, a interceptor.Attributes) (int, error) {
		if h.SSRC == rtx {
			if v := h.GetExtension(ridID); v != nil {
				rid := append([]byte(nil), v...)
				_ = h.DelExtension(ridID)
				if rridID != 0 {
					_ = h.SetExtension(rridID, rid)
				}
			}
		}
		return w.Write(h, p, a)
	})
}
