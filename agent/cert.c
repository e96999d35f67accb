/* lightspeed-agent: the certificate, its key and the QUIC static secret (cert.h). */
#include "cert.h"

#include <errno.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "statefile.h"

#define CERT_YEARS 20

static int gnutls_fail(char *err, size_t errlen, const char *what, int rv)
{
	snprintf(err, errlen, "%s: %s", what, gnutls_strerror(rv));
	return -1;
}

int cert_generate(const char *cn, char **cert_pem, char **key_pem, char *err, size_t errlen)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t c = { NULL, 0 }, k = { NULL, 0 };
	uint8_t serial[16];
	char dn[128];
	time_t now = time(NULL);
	int rv, ret = -1;

	*cert_pem = *key_pem = NULL;
	if ((rv = gnutls_x509_privkey_init(&key)) < 0 ||
	    (rv = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
						GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0) {
		gnutls_fail(err, errlen, "generating the key", rv);
		goto out;
	}
	if ((rv = gnutls_x509_crt_init(&crt)) < 0) {
		gnutls_fail(err, errlen, "certificate", rv);
		goto out;
	}
	/* A positive serial: the top bit clear. */
	if (ls_quic_random(serial, sizeof(serial)) != 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		goto out;
	}
	serial[0] &= 0x7f;
	/* The DN is informational (the pin is the fingerprint), but keep it parseable. */
	snprintf(dn, sizeof(dn), "CN=lightspeed-agent %s", cn);
	for (char *p = dn + 3; *p; p++)
		if (*p == ',' || *p == '+' || *p == '=' || *p == '\\' || *p == '"')
			*p = '_';
	if ((rv = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (rv = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
	    (rv = gnutls_x509_crt_set_activation_time(crt, now - 24 * 3600)) < 0 ||
	    (rv = gnutls_x509_crt_set_expiration_time(crt, now + CERT_YEARS * 365L * 24 * 3600)) < 0 ||
	    (rv = gnutls_x509_crt_set_dn(crt, dn, NULL)) < 0 ||
	    (rv = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (rv = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (rv = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (rv = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0) {
		gnutls_fail(err, errlen, "signing the certificate", rv);
		goto out;
	}
	if ((rv = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c)) < 0 ||
	    (rv = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k)) < 0) {
		gnutls_fail(err, errlen, "exporting", rv);
		goto out;
	}
	*cert_pem = strndup((const char *)c.data, c.size);
	*key_pem = strndup((const char *)k.data, k.size);
	if (!*cert_pem || !*key_pem) {
		snprintf(err, errlen, "out of memory");
		free(*cert_pem);
		free(*key_pem);
		*cert_pem = *key_pem = NULL;
		goto out;
	}
	ret = 0;
out:
	if (k.data) {
		memset(k.data, 0, k.size);
		gnutls_free(k.data);
	}
	gnutls_free(c.data);
	if (crt)
		gnutls_x509_crt_deinit(crt);
	if (key)
		gnutls_x509_privkey_deinit(key);
	return ret;
}

int cert_pem_fp(const char *pem, size_t len, uint8_t fp[LS_CTL_FP_LEN])
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t in = { (unsigned char *)(uintptr_t)pem, (unsigned)len }, der = { NULL, 0 };
	int rv;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	rv = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM);
	if (rv >= 0)
		rv = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der);
	gnutls_x509_crt_deinit(crt);
	if (rv < 0)
		return -1;
	ls_quic_fp_der(der.data, der.size, fp);
	gnutls_free(der.data);
	return 0;
}

static void tighten(const char *path)
{
	if (ls_statefile_private(path) == 1)
		ls_warn("%s was readable by others: made it 0600", path);
}

static int load_secret(const char *state_dir, struct cert *c, char *err, size_t errlen)
{
	char path[4200];
	size_t n = 0;
	char *buf;

	snprintf(path, sizeof(path), "%s/quic.secret", state_dir);
	buf = ls_statefile_read(path, 4096, &n, err, errlen);
	if (!buf && errno != ENOENT)
		return -1;
	if (buf && n == LS_QUIC_SECRET_LEN) {
		memcpy(c->secret, buf, n);
		memset(buf, 0, n);
		free(buf);
		tighten(path);
		return 0;
	}
	if (buf) {
		ls_warn("%s is %zu bytes, not %d: making a new one", path, n, LS_QUIC_SECRET_LEN);
		free(buf);
	}
	if (ls_quic_random(c->secret, sizeof(c->secret)) != 0) {
		snprintf(err, errlen, "getrandom: %s", strerror(errno));
		return -1;
	}
	return ls_statefile_write(path, c->secret, sizeof(c->secret), err, errlen);
}

int cert_load(const char *state_dir, const char *node_id, struct cert *c, char *err,
	      size_t errlen)
{
	char *pem = NULL, *key = NULL;
	size_t n = 0;
	int ret = -1;

	memset(c, 0, sizeof(*c));
	if (ls_statefile_dir(state_dir, err, errlen) != 0)
		return -1;
	snprintf(c->cert_path, sizeof(c->cert_path), "%s/agent.crt", state_dir);
	snprintf(c->key_path, sizeof(c->key_path), "%s/agent.key", state_dir);
	pem = ls_statefile_read(c->cert_path, 1 << 16, &n, err, errlen);
	if (pem) {
		key = ls_statefile_read(c->key_path, 1 << 16, NULL, err, errlen);
		if (!key && errno != ENOENT)
			goto out;
	} else if (errno != ENOENT) {
		goto out;
	}
	if (!pem || !key) {
		/* First start (or half a pair left): a new identity. Controllers that
		 * pinned the old one will refuse it until an operator trusts it. */
		free(pem);
		free(key);
		pem = key = NULL;
		if (cert_generate(node_id, &pem, &key, err, errlen) != 0)
			goto out;
		n = strlen(pem);
		if (ls_statefile_write(c->key_path, key, strlen(key), err, errlen) != 0 ||
		    ls_statefile_write(c->cert_path, pem, n, err, errlen) != 0)
			goto out;
		c->created = true;
	} else {
		tighten(c->cert_path);
		tighten(c->key_path);
	}
	if (cert_pem_fp(pem, n, c->fp) != 0) {
		snprintf(err, errlen, "%s: not a PEM certificate (remove it and the key to make "
			 "a new identity)", c->cert_path);
		goto out;
	}
	ls_ctl_fp_fmt(c->fp, c->fp_str);
	if (load_secret(state_dir, c, err, errlen) != 0)
		goto out;
	ret = 0;
out:
	free(pem);
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
	return ret;
}
