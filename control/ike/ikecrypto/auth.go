package ikecrypto

// keyPad is the constant of RFC 7296 §2.15: "the string 'Key Pad for IKEv2'
// ... 17 ASCII characters without null termination".
const keyPad = "Key Pad for IKEv2"

// SignedOctets builds the octets that an AUTH payload signs (RFC 7296 §2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//	MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//	MACedIDForR = prf(SK_pr, RestOfRespIDPayload)
//
// realMessage is the signer's IKE_SA_INIT message as sent (IKE header
// included, no non-ESP marker); peerNonce is the other side's Nonce Data;
// skp is SK_pi for the initiator's octets and SK_pr for the responder's;
// idBody is the ID payload after its generic header: ID Type, the three
// RESERVED octets as received, then the identification data.
func SignedOctets(prf PRFID, realMessage, peerNonce, skp, idBody []byte) ([]byte, error) {
	mac, err := PRF(prf, skp, idBody)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(realMessage)+len(peerNonce)+len(mac))
	out = append(append(append(out, realMessage...), peerNonce...), mac...)
	return out, nil
}

// PSKAuth computes the AUTH data of Shared Key Message Integrity Code
// authentication (auth method 2, RFC 7296 §2.15):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
//
// The same function serves both directions and both roles: pass the
// initiator's signed octets to build or check the initiator's AUTH, the
// responder's for the responder's. Compare a received value with
// hmac.Equal.
func PSKAuth(prf PRFID, secret, signedOctets []byte) ([]byte, error) {
	k, err := PRF(prf, secret, []byte(keyPad))
	if err != nil {
		return nil, err
	}
	return PRF(prf, k, signedOctets)
}
