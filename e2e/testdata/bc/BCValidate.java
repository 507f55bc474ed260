// BCValidate checks RFC 3161 exchanges with Bouncy Castle's TSP classes, a
// time-stamp client implementation that shares no code with tsad.
//
// Usage: java BCValidate CASES
//
// CASES is a file with one exchange a line, fields separated by tabs:
//
//	name  ca.pem  tsa.pem  request.der  response.der
//
// For each it prints "OK name genTime=… serial=<hex> policy=<oid>
// nonce=<hex|-> certs=<n>" or "FAIL name: <exception>", and it exits 0 only
// when every exchange passed.
//
// The checks: the response parses; resp.validate(req) (granted status, the
// nonce echoed, the same imprint and hash algorithm, a signing-certificate
// attribute, the requested policy); no nonce is invented; with certReq the
// token carries the TSA certificate, without it no certificate at all (RFC
// 3161 §2.4.1); token.validate() with the TSA certificate supplied out of
// band (ESSCertID(v2) hash and issuer/serial, a critical extended key usage
// holding only timeStamping, validity at genTime, the CMS signature); and
// the TSA certificate is signed by the CA.
import java.io.BufferedReader;
import java.io.FileReader;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.util.Collection;

import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateHolder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.tsp.TimeStampRequest;
import org.bouncycastle.tsp.TimeStampResponse;
import org.bouncycastle.tsp.TimeStampToken;
import org.bouncycastle.tsp.TimeStampTokenInfo;

public class BCValidate {
    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: BCValidate CASES");
            System.exit(2);
        }
        Security.addProvider(new BouncyCastleProvider());
        int failed = 0, total = 0;
        try (BufferedReader in = new BufferedReader(new FileReader(args[0], StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) {
                    continue;
                }
                String[] f = line.split("\t");
                if (f.length != 5) {
                    throw new IllegalArgumentException("bad case line: " + line);
                }
                total++;
                try {
                    System.out.println("OK " + f[0] + " " + check(f[1], f[2], f[3], f[4]));
                } catch (Exception e) {
                    failed++;
                    System.out.println("FAIL " + f[0] + ": " + e);
                }
            }
        }
        System.out.println(failed + " of " + total + " failed");
        System.exit(failed == 0 && total > 0 ? 0 : 1);
    }

    static X509Certificate readCert(String path) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        try (var in = Files.newInputStream(Paths.get(path))) {
            return (X509Certificate) cf.generateCertificate(in);
        }
    }

    static String check(String caPath, String tsaPath, String reqPath, String respPath) throws Exception {
        X509Certificate ca = readCert(caPath);
        X509Certificate tsaCert = readCert(tsaPath);
        tsaCert.verify(ca.getPublicKey());

        TimeStampRequest req = new TimeStampRequest(Files.readAllBytes(Paths.get(reqPath)));
        TimeStampResponse resp = new TimeStampResponse(Files.readAllBytes(Paths.get(respPath)));
        resp.validate(req);
        TimeStampToken tok = resp.getTimeStampToken();
        if (tok == null) {
            throw new Exception("no token (status " + resp.getStatus() + ": " + resp.getStatusString() + ")");
        }
        TimeStampTokenInfo info = tok.getTimeStampInfo();
        if (req.getNonce() == null && info.getNonce() != null) {
            throw new Exception("the token has a nonce the request did not send");
        }

        Collection<X509CertificateHolder> certs = tok.getCertificates().getMatches(null);
        X509CertificateHolder want = new JcaX509CertificateHolder(tsaCert);
        if (req.getCertReq()) {
            if (!certs.contains(want)) {
                throw new Exception("certReq was set but the token lacks the TSA certificate (" + certs.size() + " certificates)");
            }
        } else if (!certs.isEmpty()) {
            throw new Exception("certReq was not set but the token carries " + certs.size() + " certificates");
        }

        tok.validate(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(tsaCert));

        BigInteger nonce = info.getNonce();
        return "genTime=" + info.getGenTime().toInstant()
            + " serial=" + info.getSerialNumber().toString(16)
            + " policy=" + info.getPolicy().getId()
            + " nonce=" + (nonce == null ? "-" : nonce.toString(16))
            + " certs=" + certs.size();
    }
}
