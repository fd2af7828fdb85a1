//! The common name of a peer certificate's subject, for
//! `identity_as_username`: a small DER walker, no x509 crate.

use rustls::pki_types::CertificateDer;

/// The CN of the leaf certificate's subject (for `identity_as_username`).
pub fn peer_common_name(certs: &[CertificateDer]) -> Option<String> {
    der::subject_common_name(certs.first()?.as_ref())
}

/// A minimal DER walker: just enough of X.509 to reach the subject's CN.
mod der {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const EXPLICIT_0: u8 = 0xa0;
    const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

    /// Splits one TLV off `input`: (tag, contents, rest).
    pub fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, body, rest) = tlv(input)?;
        (t == tag).then_some((body, rest))
    }

    /// Certificate → tbsCertificate → [version] serial sigAlg issuer validity subject.
    pub fn subject_common_name(cert: &[u8]) -> Option<String> {
        let (certificate, _) = expect(cert, SEQUENCE)?;
        let (mut tbs, _) = expect(certificate, SEQUENCE)?;
        if tbs.first() == Some(&EXPLICIT_0) {
            tbs = tlv(tbs)?.2;
        }
        let mut field = tbs;
        for _ in 0..4 {
            field = tlv(field)?.2; // serial, signature, issuer, validity
        }
        let (subject, _) = expect(field, SEQUENCE)?;
        common_name(subject)
    }

    /// The last CN in a Name (the most specific one, as OpenSSL reports it).
    fn common_name(mut name: &[u8]) -> Option<String> {
        let mut found = None;
        while !name.is_empty() {
            let (rdn, rest) = expect(name, SET)?;
            name = rest;
            let mut attrs = rdn;
            while !attrs.is_empty() {
                let (attr, rest) = expect(attrs, SEQUENCE)?;
                attrs = rest;
                let (oid, value) = expect(attr, OID)?;
                if oid == OID_CN {
                    let (tag, body, _) = tlv(value)?;
                    found = Some(decode_string(tag, body)?);
                }
            }
        }
        found
    }

    fn decode_string(tag: u8, body: &[u8]) -> Option<String> {
        match tag {
            // UTF8String, PrintableString, IA5String, TeletexString (ASCII in practice)
            0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8(body.to_vec()).ok(),
            // BMPString: UCS-2 big endian
            0x1e => {
                let units: Vec<u16> = body
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;

    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
    /// -subj "/C=DK/O=MBusGateway/CN=GW-0001" -days 3650`
    const GW_CERT: &str = include_str!("../../tests/bridge_support/gw0001_cert.pem");

    fn der_of(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn common_name_of_a_real_certificate() {
        let cert = der_of(GW_CERT);
        assert_eq!(peer_common_name(&[cert]).as_deref(), Some("GW-0001"));
    }

    #[test]
    fn no_certificate_no_name() {
        assert_eq!(peer_common_name(&[]), None);
    }

    #[test]
    fn truncated_certificates_give_none_not_panics() {
        let cert = der_of(GW_CERT);
        let bytes = cert.as_ref();
        for cut in 0..bytes.len() {
            let part = CertificateDer::from(bytes[..cut].to_vec());
            assert_eq!(peer_common_name(&[part]), None, "cut at {cut}");
        }
    }

    #[test]
    fn tlv_long_form_lengths() {
        let mut input = vec![0x04, 0x82, 0x01, 0x00];
        input.extend(std::iter::repeat_n(7u8, 256));
        input.push(0xff);
        let (tag, body, rest) = der::tlv(&input).unwrap();
        assert_eq!((tag, body.len(), rest), (0x04, 256, &[0xff][..]));
        assert!(
            der::tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none(),
            "5-byte length"
        );
        assert!(der::tlv(&[0x04, 0x03, 1]).is_none(), "short body");
    }

    #[test]
    fn bmp_and_utf8_names() {
        // Name ::= SET { SEQ { OID 2.5.4.3, BMPString "Zé" } }
        let name = [
            0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x1e, 0x04, 0x00, 0x5a, 0x00,
            0xe9,
        ];
        let mut cert = vec![];
        // Wrap into Certificate/tbs with dummy serial, alg, issuer, validity.
        let mut tbs = vec![0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30];
        tbs.push(name.len() as u8);
        tbs.extend_from_slice(&name);
        let mut tbs_seq = vec![0x30, tbs.len() as u8];
        tbs_seq.extend(tbs);
        cert.push(0x30);
        cert.push(tbs_seq.len() as u8);
        cert.extend(tbs_seq);
        assert_eq!(der::subject_common_name(&cert).as_deref(), Some("Zé"));
    }
}
