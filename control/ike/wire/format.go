package wire

import (
	"strconv"
	"strings"
)

// String summarizes the message the way strongSwan logs it ("parsed
// IKE_SA_INIT request 0 [ SA KE No N(NATD_S_IP) N(NATD_D_IP) N(FRAG_SUP) ]"
// without the verb): exchange, request/response, Message ID and the payload
// short names. An SK payload shows as "E", a fragment as "EF(n/total)".
func (m *Message) String() string { return m.Format(nil) }

// Format is String with the decrypted (and, for SKF, reassembled) inner
// payloads listed in place of the SK or SKF payload, as strongSwan logs a
// message after decryption.
func (m *Message) Format(inner []Payload) string {
	var b strings.Builder
	b.WriteString(m.Exchange.String())
	if m.IsResponse() {
		b.WriteString(" response ")
	} else {
		b.WriteString(" request ")
	}
	b.WriteString(strconv.FormatUint(uint64(m.MessageID), 10))
	b.WriteString(" [")
	for _, p := range m.Payloads {
		if t := p.Type(); inner != nil && (t == PayloadSK || t == PayloadSKF) {
			for _, q := range inner {
				b.WriteByte(' ')
				b.WriteString(Short(q))
			}
			continue
		}
		b.WriteByte(' ')
		b.WriteString(Short(p))
	}
	b.WriteString(" ]")
	return b.String()
}

var eapCodes = map[byte]string{1: "REQ", 2: "RES", 3: "SUCC", 4: "FAIL"}
var eapTypes = map[byte]string{1: "ID", 4: "MD5", 13: "TLS", 21: "TTLS", 23: "AKA", 25: "PEAP", 26: "MSCHAPV2"}
var cpAttrs = map[uint16]string{INTERNAL_IP4_ADDRESS: "ADDR", INTERNAL_IP4_NETMASK: "MASK", INTERNAL_IP4_DNS: "DNS", INTERNAL_IP6_ADDRESS: "ADDR6", INTERNAL_IP6_DNS: "DNS6"}

// Short is the one-word name of a payload in a message summary: the
// strongSwan short name plus, for Notify, CP, EAP and SKF, the detail it
// adds ("N(NATD_S_IP)", "CPRQ(ADDR DNS)", "EAP/REQ/ID", "EF(1/3)").
func Short(p Payload) string {
	switch p := p.(type) {
	case *Notify:
		return "N(" + p.NotifyType.Short() + ")"
	case *EncryptedFragment:
		return "EF(" + strconv.Itoa(int(p.Number)) + "/" + strconv.Itoa(int(p.Total)) + ")"
	case *Config:
		s, ok := cfgShort[p.CFGType]
		if !ok {
			s = "CP" + strconv.Itoa(int(p.CFGType))
		}
		var a []string
		for _, at := range p.Attributes {
			n, ok := cpAttrs[at.Type]
			if !ok {
				n = strconv.Itoa(int(at.Type))
			}
			a = append(a, n)
		}
		return s + "(" + strings.Join(a, " ") + ")"
	case *EAP:
		s := "EAP"
		if len(p.Data) > 0 {
			c, ok := eapCodes[p.Data[0]]
			if !ok {
				c = strconv.Itoa(int(p.Data[0]))
			}
			s += "/" + c
			if len(p.Data) > 4 && (p.Data[0] == 1 || p.Data[0] == 2) {
				t, ok := eapTypes[p.Data[4]]
				if !ok {
					t = strconv.Itoa(int(p.Data[4]))
				}
				s += "/" + t
			}
		}
		return s
	}
	return p.Type().String()
}
