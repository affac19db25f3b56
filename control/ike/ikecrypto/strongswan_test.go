package ikecrypto

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The strongswan-pN.txt vectors are blobs charon dumped in its own log while
// negotiating with a second charon (testdata/ike/strongswan/capture.sh): the
// DH secrets, SKEYSEED, SK_*, the AUTH signed octets (which carry the whole
// IKE_SA_INIT messages, nonces and SPIs), the PSK AUTH values, the CHILD_SA
// KEYMAT seed and keys, and every SK payload charon sealed or opened with its
// IV, associated data, plaintext, padding, ciphertext and ICV. The log is the
// IKE initiator's ("a"), so messages it sealed use SK_ei/SK_ai.

type ssItem struct {
	key string
	val []byte
	sk  map[string][]byte // for "sk" items; "dir" is "seal" or "open"
	dir string
}

type ssStep struct {
	name  string
	props []string
	items []ssItem
}

type ssFile struct {
	psk   []byte
	steps []ssStep
}

func readStrongSwan(t *testing.T, path string) ssFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sf ssFile
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		switch k {
		case "psk_config":
			sf.psk = []byte(v)
			continue
		case "step":
			sf.steps = append(sf.steps, ssStep{name: v})
			continue
		}
		st := &sf.steps[len(sf.steps)-1]
		switch k {
		case "proposal":
			st.props = append(st.props, v)
		case "sk":
			fields := strings.Fields(v)
			it := ssItem{key: "sk", dir: fields[0], sk: map[string][]byte{}}
			for _, kv := range fields[1:] {
				name, h, _ := strings.Cut(kv, "=")
				if h != "-" {
					it.sk[name] = mustHex(h)
				}
			}
			st.items = append(st.items, it)
		default:
			b, err := hex.DecodeString(v)
			if err != nil {
				t.Fatalf("%s: %s: %v", path, k, err)
			}
			st.items = append(st.items, ssItem{key: k, val: b})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sf
}

// all returns the values of key in the step, in log order.
func (s *ssStep) all(key string) [][]byte {
	var out [][]byte
	for _, it := range s.items {
		if it.key == key {
			out = append(out, it.val)
		}
	}
	return out
}

func (s *ssStep) one(t *testing.T, key string) []byte {
	t.Helper()
	v := s.all(key)
	if len(v) != 1 {
		t.Fatalf("step %s: %d %q values, want 1", s.name, len(v), key)
	}
	return v[0]
}

// parseProposal maps strongSwan's proposal string to a Suite.
func parseProposal(t *testing.T, p string) Suite {
	t.Helper()
	var s Suite
	_, list, _ := strings.Cut(p, ":")
	for _, a := range strings.Split(list, "/") {
		switch a {
		case "AES_CBC_128":
			s.Encr, s.EncrKeyBits = EncrAESCBC, 128
		case "AES_CBC_256":
			s.Encr, s.EncrKeyBits = EncrAESCBC, 256
		case "AES_CTR_128":
			s.Encr, s.EncrKeyBits = EncrAESCTR, 128
		case "AES_CTR_256":
			s.Encr, s.EncrKeyBits = EncrAESCTR, 256
		case "AES_GCM_16_128":
			s.Encr, s.EncrKeyBits = EncrAESGCM16, 128
		case "AES_GCM_16_256":
			s.Encr, s.EncrKeyBits = EncrAESGCM16, 256
		case "CHACHA20_POLY1305":
			s.Encr = EncrChaCha20Poly1305
		case "HMAC_SHA1_96":
			s.Integ = IntegHMACSHA1_96
		case "HMAC_SHA2_256_128":
			s.Integ = IntegHMACSHA256128
		case "HMAC_SHA2_384_192":
			s.Integ = IntegHMACSHA384192
		case "HMAC_SHA2_512_256":
			s.Integ = IntegHMACSHA512256
		case "PRF_HMAC_SHA2_256":
			s.PRF = PRFHMACSHA256
		case "PRF_HMAC_SHA2_384":
			s.PRF = PRFHMACSHA384
		case "PRF_HMAC_SHA2_512":
			s.PRF = PRFHMACSHA512
		case "MODP_2048":
			s.DH = DHMODP2048
		case "ECP_256":
			s.DH = DHECP256
		case "ECP_384":
			s.DH = DHECP384
		case "ECP_521":
			s.DH = DHECP521
		case "CURVE_25519":
			s.DH = DHCurve25519
		case "NO_EXT_SEQ":
		default:
			t.Fatalf("proposal %s: unknown %s", p, a)
		}
	}
	return s
}

// payloads walks a payload chain starting with type first and returns the
// bodies (after the 4-octet generic header) by payload type, in order.
func payloads(t *testing.T, first byte, b []byte) map[byte][][]byte {
	t.Helper()
	out := map[byte][][]byte{}
	for next := first; next != 0; {
		if len(b) < 4 {
			t.Fatalf("truncated payload chain")
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		if n < 4 || n > len(b) {
			t.Fatalf("payload length %d of %d", n, len(b))
		}
		out[next] = append(out[next], b[4:n])
		next, b = b[0], b[n:]
	}
	return out
}

// Payload types (RFC 7296 §3.2).
const (
	ptSA    = 33
	ptKE    = 34
	ptCert  = 37
	ptAuth  = 39
	ptNonce = 40
)

// message parses an IKE message: SPIs, exchange type and payloads.
func message(t *testing.T, m []byte) (spii, spir uint64, exch byte, pl map[byte][][]byte) {
	t.Helper()
	if len(m) < 28 || int(binary.BigEndian.Uint32(m[24:28])) != len(m) {
		t.Fatalf("IKE message of %d octets with Length %x", len(m), m[24:28])
	}
	return binary.BigEndian.Uint64(m[0:8]), binary.BigEndian.Uint64(m[8:16]), m[18], payloads(t, m[16], m[28:])
}

type ikeSA struct {
	suite Suite
	keys  IKEKeys
}

func spiKey(a, b uint64) [2]uint64 { return [2]uint64{a, b} }

func checkEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Errorf("%s = %x, want (strongSwan) %x", what, got, want)
	}
}

func TestStrongSwan(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(vectorDir, "strongswan-p*.txt"))
	if len(files) == 0 {
		t.Fatal("no strongSwan vectors")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			testStrongSwanFile(t, readStrongSwan(t, file))
		})
	}
}

// TestStrongSwanLive runs capture.sh and extract.py for fresh random values
// and checks them the same way. It needs root, strongswan-charon,
// strongswan-swanctl, libcharon-extra-plugins, openssl and python3, and runs
// only with TUNTERM_STRONGSWAN=1.
func TestStrongSwanLive(t *testing.T) {
	if os.Getenv("TUNTERM_STRONGSWAN") != "1" {
		t.Skip("set TUNTERM_STRONGSWAN=1 to negotiate with two live charon daemons")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := os.Stat("/usr/lib/ipsec/charon"); err != nil {
		t.Skip("strongswan-charon not installed")
	}
	capDir, outDir := t.TempDir(), t.TempDir()
	scripts := filepath.Join(vectorDir, "strongswan")
	out, err := exec.Command(filepath.Join(scripts, "capture.sh"), capDir).CombinedOutput()
	if err != nil {
		t.Fatalf("capture.sh: %v\n%s", err, out)
	}
	if out, err := exec.Command("python3", filepath.Join(scripts, "extract.py"), capDir, outDir).CombinedOutput(); err != nil {
		t.Fatalf("extract.py: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(outDir, "strongswan-p*.txt"))
	if len(files) != 7 {
		t.Fatalf("%d vector files, want 7", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			testStrongSwanFile(t, readStrongSwan(t, file))
		})
	}
}

func testStrongSwanFile(t *testing.T, sf ssFile) {
	sas := map[[2]uint64]*ikeSA{}
	var cur *ikeSA // the IKE SA the next CHILD_SA derives from
	var checkedSK, checkedAuth int
	for i := range sf.steps {
		st := &sf.steps[i]
		kind := st.name[strings.Index(st.name, "-")+1:]
		t.Run(kind, func(t *testing.T) {
			switch kind {
			case "init":
				cur = strongSwanInit(t, sf, st, sas, &checkedAuth)
			case "rekey-ike":
				cur = strongSwanRekeyIKE(t, st, cur, sas)
			case "rekey-child", "rekey-child2":
				strongSwanRekeyChild(t, st, cur)
			default:
				t.Fatalf("unknown step %s", st.name)
			}
			checkedSK += strongSwanSK(t, st, sas)
		})
	}
	if checkedSK < 8 || checkedAuth != 2 {
		t.Errorf("checked %d SK payloads and %d AUTH payloads, want >= 8 and 2", checkedSK, checkedAuth)
	}
}

func strongSwanInit(t *testing.T, sf ssFile, st *ssStep, sas map[[2]uint64]*ikeSA, checkedAuth *int) *ikeSA {
	if len(st.props) != 2 {
		t.Fatalf("proposals %q", st.props)
	}
	suite := parseProposal(t, st.props[0])
	if err := suite.CheckIKE(); err != nil {
		t.Fatal(err)
	}
	prfLen := suite.PRF.Size()
	octets := st.all("octets") // initiator's (built), then responder's (verified)
	idx := st.all("idx")
	if len(octets) != 2 || len(idx) != 2 {
		t.Fatalf("%d octets, %d IDx', want 2 each", len(octets), len(idx))
	}
	// octets = RealMessage | peer's Nonce Data | prf(SK_p, IDx')
	msgLen := func(o []byte) int { return int(binary.BigEndian.Uint32(o[24:28])) }
	m1, m2 := octets[0][:msgLen(octets[0])], octets[1][:msgLen(octets[1])]
	spii, _, exch1, pl1 := message(t, m1)
	spii2, spir, exch2, pl2 := message(t, m2)
	if exch1 != 34 || exch2 != 34 || spii != spii2 {
		t.Fatalf("IKE_SA_INIT messages: exchange %d/%d, SPIi %x/%x", exch1, exch2, spii, spii2)
	}
	ni, nr := pl1[ptNonce][0], pl2[ptNonce][0]
	for _, ke := range [][]byte{pl1[ptKE][0], pl2[ptKE][0]} {
		if g := DHGroup(binary.BigEndian.Uint16(ke)); g != suite.DH || len(ke)-4 != g.PublicLen() {
			t.Errorf("KE payload group %d with %d octets, want %d with PublicLen %d", g, len(ke)-4, suite.DH, suite.DH.PublicLen())
		}
	}

	gir := st.one(t, "ike_dh")
	if len(gir) != suite.DH.SharedLen() {
		t.Errorf("g^ir of %d octets, want SharedLen %d", len(gir), suite.DH.SharedLen())
	}
	skeyseed, err := SKEYSEED(suite.PRF, ni, nr, gir)
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "SKEYSEED", skeyseed, st.one(t, "skeyseed"))
	keys, err := DeriveIKEKeys(suite, skeyseed, ni, nr, spii, spir)
	if err != nil {
		t.Fatal(err)
	}
	checkIKEKeys(t, st, suite, keys)

	// AUTH signed octets (RFC 7296 §2.15), both directions.
	o1, err := SignedOctets(suite.PRF, m1, nr, keys.SKpi, idx[0])
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "InitiatorSignedOctets", o1, octets[0])
	o2, _ := SignedOctets(suite.PRF, m2, ni, keys.SKpr, idx[1])
	checkEqual(t, "ResponderSignedOctets", o2, octets[1])
	if len(o1) != len(m1)+len(nr)+prfLen {
		t.Errorf("octets length %d", len(o1))
	}

	if sf.psk != nil {
		auth := st.all("auth")
		if len(auth) != 2 {
			t.Fatalf("%d AUTH values, want 2", len(auth))
		}
		for _, p := range st.all("psk") {
			checkEqual(t, "PSK", sf.psk, p)
		}
		a1, _ := PSKAuth(suite.PRF, sf.psk, o1)
		checkEqual(t, "initiator PSK AUTH", a1, auth[0])
		a2, _ := PSKAuth(suite.PRF, sf.psk, o2)
		checkEqual(t, "responder PSK AUTH", a2, auth[1])
		*checkedAuth += 2
	}

	sa := &ikeSA{suite: suite, keys: keys}
	sas[spiKey(spii, spir)] = sa

	// Certificate auth: the AUTH and CERT payloads are inside the IKE_AUTH
	// plaintexts charon logged; verify charon's signatures (RFC 7427).
	if sf.psk == nil {
		for _, it := range st.items {
			if it.key != "sk" || it.sk["assoc"][18] != 35 {
				continue
			}
			assoc := it.sk["assoc"]
			pl := payloads(t, assoc[len(assoc)-4], it.sk["plain"])
			octs := o1
			if it.dir == "open" {
				octs = o2
			}
			strongSwanVerifyCert(t, pl, octs)
			*checkedAuth++
		}
	}

	// The first CHILD_SA: KEYMAT = prf+(SK_d, Ni | Nr).
	esp := parseProposal(t, st.props[1])
	esp.PRF = suite.PRF
	checkEqual(t, "CHILD_SA seed", append(append([]byte{}, ni...), nr...), st.one(t, "child_seed"))
	checkChildKeys(t, st, esp, keys.SKd, nil, ni, nr)
	return sa
}

func strongSwanVerifyCert(t *testing.T, pl map[byte][][]byte, octets []byte) {
	t.Helper()
	if len(pl[ptAuth]) != 1 || len(pl[ptCert]) == 0 {
		t.Fatalf("IKE_AUTH without AUTH or CERT payload")
	}
	cert := pl[ptCert][0]
	if cert[0] != 4 { // X.509 Certificate - Signature (RFC 7296 §3.6)
		t.Fatalf("CERT encoding %d", cert[0])
	}
	c, err := x509.ParseCertificate(cert[1:])
	if err != nil {
		t.Fatal(err)
	}
	auth := pl[ptAuth][0]
	method, data := AuthMethod(auth[0]), auth[4:]
	s, err := VerifyAuth(c.PublicKey, method, data, octets)
	if err != nil {
		t.Fatalf("VerifyAuth(%s, method %d) = %v", c.Subject, method, err)
	}
	// Our AlgorithmIdentifier blob is byte for byte the one charon sent.
	checkEqual(t, "AlgorithmIdentifier of "+s.String(), s.AlgorithmIdentifier(), data[1:1+int(data[0])])
	octets2 := append(append([]byte{}, octets...), 0)
	if _, err := VerifyAuth(c.PublicKey, method, data, octets2); err == nil {
		t.Errorf("VerifyAuth accepted altered octets")
	}
	t.Logf("verified %s signature of %s", s, c.Subject)
}

func checkIKEKeys(t *testing.T, st *ssStep, s Suite, k IKEKeys) {
	t.Helper()
	checkEqual(t, "SK_d", k.SKd, st.one(t, "sk_d"))
	if !s.Encr.AEAD() {
		checkEqual(t, "SK_ai", k.SKai, st.one(t, "sk_ai"))
		checkEqual(t, "SK_ar", k.SKar, st.one(t, "sk_ar"))
	} else if len(k.SKai) != 0 || len(st.all("sk_ai")) != 0 {
		t.Errorf("SK_ai with an AEAD cipher")
	}
	checkEqual(t, "SK_ei", k.SKei, st.one(t, "sk_ei"))
	checkEqual(t, "SK_er", k.SKer, st.one(t, "sk_er"))
	checkEqual(t, "SK_pi", k.SKpi, st.one(t, "sk_pi"))
	checkEqual(t, "SK_pr", k.SKpr, st.one(t, "sk_pr"))
}

func checkChildKeys(t *testing.T, st *ssStep, esp Suite, skd, gir, ni, nr []byte) {
	t.Helper()
	ck, err := DeriveChildKeys(esp, skd, gir, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "ESP encryption key i->r", ck.InitToResp.EncKey, st.one(t, "encr_i"))
	checkEqual(t, "ESP encryption key r->i", ck.RespToInit.EncKey, st.one(t, "encr_r"))
	if esp.Encr.AEAD() {
		if len(st.all("integ_i")) != 0 || len(ck.InitToResp.IntegKey) != 0 {
			t.Errorf("integrity keys with an AEAD cipher")
		}
		return
	}
	checkEqual(t, "ESP integrity key i->r", ck.InitToResp.IntegKey, st.one(t, "integ_i"))
	checkEqual(t, "ESP integrity key r->i", ck.RespToInit.IntegKey, st.one(t, "integ_r"))
}

// createChildSA finds the CREATE_CHILD_SA request charon sealed and the
// response it opened that carry nonces (RFC 7296 §1.3), and returns their
// payloads.
func createChildSA(t *testing.T, st *ssStep) (req, resp map[byte][][]byte, spis [2]uint64) {
	t.Helper()
	for _, it := range st.items {
		if it.key != "sk" || it.sk["assoc"][18] != 36 {
			continue
		}
		assoc := it.sk["assoc"]
		pl := payloads(t, assoc[len(assoc)-4], it.sk["plain"])
		if len(pl[ptNonce]) == 0 {
			continue
		}
		if it.dir == "seal" && req == nil {
			req = pl
			spis = spiKey(binary.BigEndian.Uint64(assoc[0:8]), binary.BigEndian.Uint64(assoc[8:16]))
		} else if it.dir == "open" && resp == nil {
			resp = pl
		}
	}
	if req == nil || resp == nil {
		t.Fatalf("no CREATE_CHILD_SA request/response with nonces")
	}
	return req, resp, spis
}

func strongSwanRekeyChild(t *testing.T, st *ssStep, sa *ikeSA) {
	req, resp, _ := createChildSA(t, st)
	ni, nr := req[ptNonce][0], resp[ptNonce][0]
	esp := parseProposal(t, st.props[len(st.props)-1])
	esp.PRF = sa.suite.PRF
	var gir []byte
	if esp.DH != DHNone {
		gir = st.one(t, "child_dh")
		if len(gir) != esp.DH.SharedLen() {
			t.Errorf("PFS g^ir of %d octets, want %d", len(gir), esp.DH.SharedLen())
		}
	}
	seed := append(append(append([]byte{}, gir...), ni...), nr...)
	checkEqual(t, "CHILD_SA seed", seed, st.one(t, "child_seed"))
	checkChildKeys(t, st, esp, sa.keys.SKd, gir, ni, nr)
}

func strongSwanRekeyIKE(t *testing.T, st *ssStep, old *ikeSA, sas map[[2]uint64]*ikeSA) *ikeSA {
	req, resp, _ := createChildSA(t, st)
	ni, nr := req[ptNonce][0], resp[ptNonce][0]
	// The new SPIs are in the SA payloads' proposals (RFC 7296 §2.18):
	// proposal header of 8 octets, SPI Size 8 at offset 6, then the SPI.
	spi := func(sa []byte) uint64 {
		if sa[6] != 8 {
			t.Fatalf("IKE proposal with SPI size %d", sa[6])
		}
		return binary.BigEndian.Uint64(sa[8:16])
	}
	spii, spir := spi(req[ptSA][0]), spi(resp[ptSA][0])
	suite := parseProposal(t, st.props[len(st.props)-1])
	gir := st.one(t, "ike_dh")
	skeyseed, err := RekeySKEYSEED(old.suite.PRF, old.keys.SKd, gir, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	checkEqual(t, "rekeyed SKEYSEED", skeyseed, st.one(t, "skeyseed"))
	keys, err := DeriveIKEKeys(suite, skeyseed, ni, nr, spii, spir)
	if err != nil {
		t.Fatal(err)
	}
	checkIKEKeys(t, st, suite, keys)
	sa := &ikeSA{suite: suite, keys: keys}
	sas[spiKey(spii, spir)] = sa
	return sa
}

// strongSwanSK opens every SK payload charon sealed or opened, with the keys
// of the IKE SA its header names, and reproduces charon's sealed bytes from
// the same IV and padding.
func strongSwanSK(t *testing.T, st *ssStep, sas map[[2]uint64]*ikeSA) int {
	n := 0
	for _, it := range st.items {
		if it.key != "sk" {
			continue
		}
		m := it.sk
		assoc := m["assoc"]
		sa := sas[spiKey(binary.BigEndian.Uint64(assoc[0:8]), binary.BigEndian.Uint64(assoc[8:16]))]
		if sa == nil {
			t.Fatalf("SK payload of unknown IKE SA %x", assoc[:16])
		}
		ek, ik := sa.keys.SKer, sa.keys.SKar
		if assoc[19]&0x08 != 0 { // Initiator flag: sent by the original initiator
			ek, ik = sa.keys.SKei, sa.keys.SKai
		}
		sk, err := NewSK(sa.suite, ek, ik)
		if err != nil {
			t.Fatal(err)
		}
		// charon's "encrypted" blob includes the ICV when opening, not when
		// sealing; "padding" is the padding plus the Pad Length octet.
		body := append(append([]byte{}, m["iv"]...), m["encrypted"]...)
		if it.dir == "seal" {
			body = append(body, m["icv"]...)
		} else if !bytes.HasSuffix(body, m["icv"]) {
			t.Fatalf("opened ciphertext does not end with the ICV")
		}
		if got := int(binary.BigEndian.Uint32(assoc[24:28])); got != len(assoc)+len(body) {
			t.Errorf("IKE header Length %d, message %d octets", got, len(assoc)+len(body))
		}
		plain, err := sk.Open(assoc, body)
		if err != nil {
			t.Errorf("Open(%s message %x...) = %v", it.dir, assoc[:20], err)
			continue
		}
		checkEqual(t, "opened plaintext", plain, m["plain"])
		if got := sk.SealedLen(len(m["plain"])); got != len(body) {
			t.Errorf("SealedLen(%d) = %d, charon's body has %d", len(m["plain"]), got, len(body))
		} else {
			pad := m["padding"][:len(m["padding"])-1]
			sealed := sk.sealIV(nil, assoc, m["plain"], m["iv"], pad)
			checkEqual(t, "sealed body", sealed, body)
		}
		// Any flipped bit in the header or body must fail.
		for _, pos := range []int{0, 17, len(assoc) - 1} {
			a2 := append([]byte{}, assoc...)
			a2[pos] ^= 0x80
			if p, err := sk.Open(a2, body); err == nil {
				t.Errorf("Open accepted a modified header octet %d: %x", pos, p)
			}
		}
		b2 := append([]byte{}, body...)
		b2[len(b2)/2] ^= 1
		if _, err := sk.Open(assoc, b2); err == nil {
			t.Errorf("Open accepted a modified body")
		}
		n++
	}
	return n
}
