/*-------------------------------------------------------------------------
 *
 * credentials.c
 *	  The AWS credentials a request is signed with.
 *
 * A user mapping's access_key_id and secret_access_key (and session_token)
 * come first.  Without them the server process's ambient credentials are
 * looked for in the AWS SDKs' order, first hit wins:
 *
 *	1. the environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 *	   AWS_SESSION_TOKEN (skipped when a profile is named, as the SDKs do);
 *	2. the shared credentials and config files (AWS_SHARED_CREDENTIALS_FILE,
 *	   AWS_CONFIG_FILE, ~/.aws/...), profile from the user mapping's profile
 *	   option, else AWS_PROFILE, else "default": static keys, or role_arn
 *	   with web_identity_token_file;
 *	3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, through
 *	   STS AssumeRoleWithWebIdentity (EKS IRSA);
 *	4. the container endpoint: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *	   _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) (ECS, EKS Pod
 *	   Identity);
 *	5. the instance metadata service, IMDSv2 only (a session token first),
 *	   unless AWS_EC2_METADATA_DISABLED is true.
 *
 * A source that is configured but does not work stops the search with its
 * own error rather than silently falling through to another identity.
 *
 * Ambient credentials belong to the server process, not to a role: only a
 * superuser may use them, or any role when a superuser has set the server
 * option use_ambient_credentials (the reasoning of postgres_fdw's
 * password_required).  The check is made on every resolution, before the
 * cache is consulted.
 *
 * Temporary credentials are cached per backend, keyed by profile and
 * region, and refreshed five minutes before they expire (halfway through
 * their remaining life when that is shorter).  A refresh that fails while
 * the current credentials are still valid warns and keeps them; an
 * expired-token answer from AWS forces one refresh (aws.c then retries the
 * call once).  Secrets never reach a message: errors name the source, the
 * file, the URL or the role, and quote remote errors only with the
 * web-identity and container tokens removed.
 *
 * credential_process is not run.  Running a program is a privilege
 * PostgreSQL reserves for superusers and pg_execute_server_program (COPY
 * FROM PROGRAM); here any role allowed ambient credentials would trigger it.
 * The program would run as the server's OS user with the server's
 * environment and inherited descriptors, outside the backend's signal and
 * interrupt handling, and may block (an SSO login waits for a browser) or
 * write to stderr, which is the server log.  A profile that uses it is an
 * error that says so; run the program outside the server and hand its
 * output over through a credentials file or a container credentials
 * endpoint.  The same goes for AssumeRole chains (source_profile,
 * credential_source) and IAM Identity Center (sso_*) profiles, which are
 * reported as unsupported rather than skipped.
 *
 * (No utils/builtins.h here: its fmgrprotos.h declares a json_object()
 * that clashes with json-c's type.)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <json-c/json.h>
#include <time.h>

#include "access/htup_details.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws.h"
#include "credentials.h"
#include "http.h"
#include "option.h"
#include "sigv4.h"

/* refresh this long before expiry (or halfway, for shorter lives) */
#define REFRESH_WINDOW_MS		(5 * 60 * 1000)
/* after a failed refresh with valid credentials, try again this much later */
#define REFRESH_RETRY_MS		(10 * 1000)

#define IMDS_DEFAULT_ENDPOINT	"http://169.254.169.254"
#define IMDS_IPV6_ENDPOINT		"http://[fd00:ec2::254]"
#define IMDS_TOKEN_TTL			"21600"
#define ECS_CONTAINER_HOST		"http://169.254.170.2"

#define STS_TIMEOUT_MS			10000
#define STS_ATTEMPTS			3

#define MAX_FILE_SIZE			(1024 * 1024)
#define MAX_TOKEN_SIZE			(64 * 1024)
#define MAX_REMOTE_TEXT			300

typedef enum FetchStatus
{
	FETCH_FOUND,				/* credentials in hand */
	FETCH_ABSENT,				/* the source is not configured: try the next */
	FETCH_FAILED				/* configured, but it did not work: stop */
} FetchStatus;

/* What one source gave: credentials, or why not (never with secrets). */
typedef struct Fetched
{
	EsdCredentialSource source;
	char	   *detail;
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;
	TimestampTz expiration;
	char	   *problem;
	const char *hint;
} Fetched;

static MemoryContext cache_cxt = NULL;
static EsdCredentials *cache = NULL;

const char *
esd_credential_source_name(EsdCredentialSource source)
{
	switch (source)
	{
		case ESD_CREDENTIALS_USER_MAPPING:
			return "user mapping";
		case ESD_CREDENTIALS_ENVIRONMENT:
			return "environment";
		case ESD_CREDENTIALS_PROFILE:
			return "shared files";
		case ESD_CREDENTIALS_WEB_IDENTITY:
			return "web identity";
		case ESD_CREDENTIALS_CONTAINER:
			return "container endpoint";
		case ESD_CREDENTIALS_INSTANCE_METADATA:
			return "instance metadata";
	}
	return "unknown";
}

/* ---------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------
 */

/* An environment variable, NULL when unset or empty (as the SDKs read them). */
static const char *
env(const char *name)
{
	const char *value = getenv(name);

	return (value && value[0]) ? value : NULL;
}

static FetchStatus
set_problem(Fetched *f, FetchStatus status, const char *fmt,...) pg_attribute_printf(3, 4);

/* Record why a source gave nothing, and say so. */
static FetchStatus
set_problem(Fetched *f, FetchStatus status, const char *fmt,...)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	f->problem = buf.data;
	return status;
}

/* Overwrite and free a secret. */
static void
forget(char *secret)
{
	if (secret)
	{
		explicit_bzero(secret, strlen(secret));
		pfree(secret);
	}
}

static char *
trim(char *s)
{
	char	   *end;

	while (*s && isspace((unsigned char) *s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char) end[-1]))
		*--end = '\0';
	return s;
}

/* A remote text made printable and short, with a secret cut out. */
static char *
remote_text(const char *s, size_t len, const char *secret)
{
	StringInfoData buf;
	size_t		secret_len = secret ? strlen(secret) : 0;

	initStringInfo(&buf);
	for (size_t i = 0; i < len && buf.len < MAX_REMOTE_TEXT; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (secret_len > 0 && i + secret_len <= len && memcmp(s + i, secret, secret_len) == 0)
		{
			appendStringInfoString(&buf, "(redacted)");
			i += secret_len - 1;
			continue;
		}
		appendStringInfoChar(&buf, (c >= 0x20 && c < 0x7f) ? (char) c : ' ');
	}
	if (buf.len >= MAX_REMOTE_TEXT)
		appendStringInfoString(&buf, "...");
	return buf.data;
}

/*
 * Read a small file whole.  NULL when it cannot be read, with errno set
 * (ENOENT for a missing file, EFBIG for one over max_size).
 */
static char *
read_small_file(const char *path, size_t max_size)
{
	FILE	   *file = AllocateFile(path, "r");
	StringInfoData buf;
	char		chunk[4096];
	size_t		n;
	int			save_errno;

	if (file == NULL)
		return NULL;
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), file)) > 0)
	{
		if (buf.len + n > max_size)
		{
			FreeFile(file);
			forget(buf.data);
			errno = EFBIG;
			return NULL;
		}
		appendBinaryStringInfo(&buf, chunk, (int) n);
	}
	save_errno = ferror(file) ? errno : 0;
	explicit_bzero(chunk, sizeof(chunk));
	FreeFile(file);
	if (save_errno != 0)
	{
		forget(buf.data);
		errno = save_errno;
		return NULL;
	}
	return buf.data;
}

/* "could not read file ...: reason", for problems */
static char *
file_problem(const char *what, const char *path)
{
	return psprintf("could not read %s \"%s\": %s", what, path,
					errno == EFBIG ? "file too large" : strerror(errno));
}

/*
 * An ISO 8601 time as AWS writes expirations: YYYY-MM-DDTHH:MM:SS, an
 * optional fraction, then Z or an offset.
 */
static bool
parse_iso8601(const char *s, TimestampTz *result)
{
	struct pg_tm tm;
	int			n = 0;
	fsec_t		fsec = 0;
	int			offset = 0;
	const char *p;
	Timestamp	ts;

	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return false;
	p = s + n;
	if (*p == '.')
	{
		int			digits = 0;

		for (p++; isdigit((unsigned char) *p); p++, digits++)
			if (digits < 6)
				fsec = fsec * 10 + (*p - '0');
		if (digits == 0)
			return false;
		for (; digits < 6; digits++)
			fsec *= 10;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			sign = *p == '-' ? -1 : 1;
		int			hh,
					mm;

		if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5)
			return false;
		offset = sign * (hh * 3600 + mm * 60);
		p += 6;
	}
	else
		return false;
	if (*p != '\0' || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
		return false;
	if (tm2timestamp(&tm, fsec, NULL, &ts) != 0)
		return false;
	*result = ts - (TimestampTz) offset * USECS_PER_SEC;
	return true;
}

/* A string member of a JSON object, or NULL. */
static const char *
json_string_member(json_object *obj, const char *name)
{
	json_object *v;

	if (obj && json_object_object_get_ex(obj, name, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/* A whole number from the environment, or the default. */
static int
env_int(const char *name, int dflt, int min, int max)
{
	const char *value = env(name);
	char	   *end;
	long		v;

	if (value == NULL)
		return dflt;
	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		return dflt;
	return (int) v;
}

/* ---------------------------------------------------------------------
 * Plain HTTP for the credential endpoints
 * ---------------------------------------------------------------------
 */

/*
 * One request to a credential endpoint, tried up to `attempts` times while
 * no answer comes or the answer is a 5xx.  True with the status and body of
 * the last answer; false, with curl's reason, when none came.  It runs apart
 * from any batch of AWS calls in flight (http_perform).
 */
static bool
credential_http(const char *method, const char *url, const char *const *headers,
				const char *body, long timeout_ms, int attempts,
				long *status, StringInfo response, char **failure)
{
	struct curl_slist *volatile list = NULL;
	volatile bool answered = false;

	for (const char *const *h = headers; h && *h; h++)
	{
		struct curl_slist *next = curl_slist_append(list, *h);

		if (next == NULL)
		{
			curl_slist_free_all(list);
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		}
		list = next;
	}

	PG_TRY();
	{
		for (int attempt = 1;; attempt++)
		{
			HttpTransfer t;

			memset(&t, 0, sizeof(t));
			t.method = method;
			t.url = url;
			t.headers = list;
			t.body = body;
			t.body_len = body ? strlen(body) : 0;
			t.connect_timeout_ms = timeout_ms;
			t.timeout_ms = timeout_ms;
			t.max_response = 256 * 1024;
			http_perform(&t);

			answered = t.curl_code == CURLE_OK;
			if (answered)
			{
				*status = t.status;
				*response = t.response;
			}
			else
				*failure = t.too_large ? pstrdup("the answer is too large")
					: remote_text(t.errbuf[0] ? t.errbuf : curl_easy_strerror(t.curl_code),
								  strlen(t.errbuf[0] ? t.errbuf : curl_easy_strerror(t.curl_code)),
								  NULL);
			if ((answered && t.status < 500) || attempt >= attempts)
				break;

			/* a short, interruptible pause before the next attempt */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 100L * attempt, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_FINALLY();
	{
		curl_slist_free_all(list);
	}
	PG_END_TRY();

	return answered;
}

/*
 * Credentials from a JSON answer (container endpoint, instance metadata):
 * AccessKeyId, SecretAccessKey, Token, Expiration.  The body is never
 * quoted: it holds the secret.
 */
static FetchStatus
credentials_from_json(StringInfo body, const char *where, Fetched *f)
{
	json_object *root = aws_json_parse(body->data, body->len);
	const char *id = json_string_member(root, "AccessKeyId");
	const char *secret = json_string_member(root, "SecretAccessKey");
	const char *token = json_string_member(root, "Token");
	const char *expiration = json_string_member(root, "Expiration");
	const char *code = json_string_member(root, "Code");
	FetchStatus status = FETCH_FOUND;

	if (root == NULL || !json_object_is_type(root, json_type_object))
		status = set_problem(f, FETCH_FAILED, "%s answered something that is not a JSON object", where);
	else if (code && strcmp(code, "Success") != 0)
		status = set_problem(f, FETCH_FAILED, "%s answered Code \"%s\"", where,
							 remote_text(code, strlen(code), NULL));
	else if (id == NULL || secret == NULL || !id[0] || !secret[0])
		status = set_problem(f, FETCH_FAILED, "%s answered without AccessKeyId and SecretAccessKey", where);
	else if (expiration && !parse_iso8601(expiration, &f->expiration))
		status = set_problem(f, FETCH_FAILED, "%s answered an Expiration that is not an ISO 8601 time", where);
	else
	{
		f->access_key_id = pstrdup(id);
		f->secret_access_key = pstrdup(secret);
		f->session_token = token && token[0] ? pstrdup(token) : NULL;
	}
	explicit_bzero(body->data, body->len);
	return status;
}

/* ---------------------------------------------------------------------
 * The sources
 * ---------------------------------------------------------------------
 */

static FetchStatus
from_environment(Fetched *f)
{
	const char *id = env("AWS_ACCESS_KEY_ID");
	const char *secret = env("AWS_SECRET_ACCESS_KEY");
	const char *expiration = env("AWS_CREDENTIAL_EXPIRATION");

	f->source = ESD_CREDENTIALS_ENVIRONMENT;
	f->detail = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY";
	if (id == NULL && secret == NULL)
		return set_problem(f, FETCH_ABSENT, "AWS_ACCESS_KEY_ID is not set");
	if (id == NULL || secret == NULL)
		return set_problem(f, FETCH_FAILED, "%s is set but %s is not",
						   id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
						   id ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
	if (expiration && !parse_iso8601(expiration, &f->expiration))
		return set_problem(f, FETCH_FAILED, "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
	f->access_key_id = pstrdup(id);
	f->secret_access_key = pstrdup(secret);
	f->session_token = env("AWS_SESSION_TOKEN") ? pstrdup(env("AWS_SESSION_TOKEN")) : NULL;
	return FETCH_FOUND;
}

/*
 * Web identity: a token file and a role, exchanged for credentials by STS
 * AssumeRoleWithWebIdentity (an unsigned call; the token is the proof).
 */
static FetchStatus
assume_role_with_web_identity(const char *token_file, const char *role_arn,
							  const char *session_name, const char *region,
							  Fetched *f)
{
	const char *endpoint_env = env("AWS_ENDPOINT_URL_STS");
	char	   *endpoint;
	char	   *token;
	char	   *body;
	const char *headers[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
	"Accept: text/xml", NULL};
	long		status = 0;
	StringInfoData response;
	char	   *failure = NULL;
	char	   *expiration;

	if (endpoint_env)
	{
		endpoint = pstrdup(endpoint_env);
		while (strlen(endpoint) > 0 && endpoint[strlen(endpoint) - 1] == '/')
			endpoint[strlen(endpoint) - 1] = '\0';
	}
	else
		endpoint = psprintf("https://sts.%s.amazonaws.com%s", region,
							strncmp(region, "cn-", 3) == 0 ? ".cn" : "");

	token = read_small_file(token_file, MAX_TOKEN_SIZE);
	if (token == NULL)
		return set_problem(f, FETCH_FAILED, "%s", file_problem("web identity token file", token_file));
	token = trim(token);
	if (token[0] == '\0')
		return set_problem(f, FETCH_FAILED, "web identity token file \"%s\" is empty", token_file);

	if (session_name == NULL)
		session_name = psprintf("event_store_dynamo-%ld", (long) time(NULL));
	body = psprintf("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=%s&RoleSessionName=%s&WebIdentityToken=%s",
					sigv4_uri_encode(role_arn, false), sigv4_uri_encode(session_name, false),
					sigv4_uri_encode(token, false));
	f->detail = psprintf("role %s through %s", role_arn, endpoint);

	if (!credential_http("POST", psprintf("%s/", endpoint), headers, body,
						 STS_TIMEOUT_MS, STS_ATTEMPTS, &status, &response, &failure))
	{
		explicit_bzero(body, strlen(body));
		return set_problem(f, FETCH_FAILED, "STS AssumeRoleWithWebIdentity at %s failed: %s",
						   endpoint, failure);
	}
	explicit_bzero(body, strlen(body));

	if (status != 200)
	{
		char	   *code = aws_xml_text(response.data, "Code");
		char	   *message = aws_xml_text(response.data, "Message");

		set_problem(f, FETCH_FAILED, "STS AssumeRoleWithWebIdentity for %s failed: %s: %s (HTTP status %ld)",
					role_arn,
					code ? remote_text(code, strlen(code), token) : "no error code",
					message ? remote_text(message, strlen(message), token) : "no message",
					status);
		explicit_bzero(token, strlen(token));
		return FETCH_FAILED;
	}
	explicit_bzero(token, strlen(token));

	f->access_key_id = aws_xml_text(response.data, "AccessKeyId");
	f->secret_access_key = aws_xml_text(response.data, "SecretAccessKey");
	f->session_token = aws_xml_text(response.data, "SessionToken");
	expiration = aws_xml_text(response.data, "Expiration");
	explicit_bzero(response.data, response.len);
	if (f->access_key_id == NULL || f->secret_access_key == NULL || f->session_token == NULL)
		return set_problem(f, FETCH_FAILED, "STS AssumeRoleWithWebIdentity at %s answered without credentials",
						   endpoint);
	if (expiration == NULL || !parse_iso8601(expiration, &f->expiration))
		return set_problem(f, FETCH_FAILED, "STS AssumeRoleWithWebIdentity at %s answered without a valid Expiration",
						   endpoint);
	return FETCH_FOUND;
}

static FetchStatus
from_web_identity(const char *region, Fetched *f)
{
	const char *token_file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *role_arn = env("AWS_ROLE_ARN");

	f->source = ESD_CREDENTIALS_WEB_IDENTITY;
	if (token_file == NULL || role_arn == NULL)
		return set_problem(f, FETCH_ABSENT, "%s",
						   token_file ? "AWS_ROLE_ARN is not set"
						   : "AWS_WEB_IDENTITY_TOKEN_FILE is not set");
	return assume_role_with_web_identity(token_file, role_arn, env("AWS_ROLE_SESSION_NAME"),
										 region, f);
}

/* ~/.aws/<name>, or the file an environment variable names ("~/" expanded). */
static char *
shared_file_path(const char *variable, const char *name)
{
	const char *path = env(variable);
	const char *home = env("HOME");
	char		home_buf[MAXPGPATH];

	if (home == NULL && get_home_path(home_buf))
		home = home_buf;
	if (home == NULL)
		home = "";
	if (path == NULL)
		return psprintf("%s/.aws/%s", home, name);
	if (strncmp(path, "~/", 2) == 0)
		return psprintf("%s%s", home, path + 1);
	return pstrdup(path);
}

/*
 * The settings of one profile in a shared file, appended to *settings as
 * name, value pairs; *found tells whether the file has the profile.  In the
 * config file a profile's section is [profile NAME] ([default] too); in the
 * credentials file it is [NAME].  Indented lines (nested settings) and
 * comments are skipped.  False, with the problem set, when the file exists
 * but cannot be read.
 */
static bool
read_profile(const char *path, const char *profile, bool is_config,
			 List **settings, bool *found, Fetched *f)
{
	char	   *text = read_small_file(path, MAX_FILE_SIZE);
	char	   *line;
	char	   *next;
	bool		in_profile = false;

	*found = false;
	if (text == NULL)
	{
		if (errno == ENOENT || errno == ENOTDIR)
			return true;
		set_problem(f, FETCH_FAILED, "%s", file_problem("shared AWS file", path));
		return false;
	}

	for (line = text; line; line = next)
	{
		char	   *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (line[0] == ' ' || line[0] == '\t')
			continue;
		line = trim(line);
		if (line[0] == '\0' || line[0] == '#' || line[0] == ';')
			continue;
		if (line[0] == '[')
		{
			char	   *close = strrchr(line, ']');
			char	   *name;

			in_profile = false;
			if (close == NULL)
				continue;
			*close = '\0';
			name = trim(line + 1);
			if (is_config && strncmp(name, "profile", 7) == 0 &&
				(name[7] == ' ' || name[7] == '\t'))
				name = trim(name + 8);
			else if (is_config && strcmp(name, "default") != 0)
				continue;		/* sso-session, services, ... */
			in_profile = strcmp(name, profile) == 0;
			*found |= in_profile;
			continue;
		}
		if (!in_profile || (eq = strchr(line, '=')) == NULL)
			continue;
		*eq = '\0';
		*settings = lappend(*settings, pstrdup(trim(line)));
		*settings = lappend(*settings, pstrdup(trim(eq + 1)));
	}
	explicit_bzero(text, strlen(text));
	return true;
}

/* The last value of a setting in a name, value list; NULL when absent or empty. */
static const char *
setting(List *settings, const char *name)
{
	const char *value = NULL;

	for (int i = 0; i + 1 < list_length(settings); i += 2)
		if (pg_strcasecmp(list_nth(settings, i), name) == 0)
			value = list_nth(settings, i + 1);
	return (value && value[0]) ? value : NULL;
}

/*
 * A profile of the shared files.  Settings of the credentials file win
 * over those of the config file.  A profile that is named (by the user
 * mapping or AWS_PROFILE) must exist and hold credentials; the implicit
 * "default" may be missing or hold none, and the search goes on.
 */
static FetchStatus
from_profile(const char *profile, bool named, const char *region, Fetched *f)
{
	char	   *cred_path = shared_file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	char	   *config_path = shared_file_path("AWS_CONFIG_FILE", "config");
	List	   *cred = NIL;
	List	   *config = NIL;
	bool		in_cred;
	bool		in_config;
	const char *id;
	const char *secret;
	const char *role_arn;
	const char *token_file;

	f->source = ESD_CREDENTIALS_PROFILE;
	if (!read_profile(cred_path, profile, false, &cred, &in_cred, f) ||
		!read_profile(config_path, profile, true, &config, &in_config, f))
		return FETCH_FAILED;
	if (!in_cred && !in_config)
		return set_problem(f, named ? FETCH_FAILED : FETCH_ABSENT,
						   "no profile \"%s\" in \"%s\" or \"%s\"", profile, cred_path, config_path);

#define PROFILE_SETTING(name) (setting(cred, name) ? setting(cred, name) : setting(config, name))
	id = PROFILE_SETTING("aws_access_key_id");
	secret = PROFILE_SETTING("aws_secret_access_key");
	role_arn = PROFILE_SETTING("role_arn");
	token_file = PROFILE_SETTING("web_identity_token_file");

	f->detail = psprintf("profile \"%s\" in \"%s\"", profile, in_cred ? cred_path : config_path);
	if (role_arn && token_file)
	{
		FetchStatus status = assume_role_with_web_identity(token_file, role_arn,
														   PROFILE_SETTING("role_session_name"),
														   region, f);

		f->source = ESD_CREDENTIALS_PROFILE;
		f->detail = psprintf("profile \"%s\" in \"%s\": web identity, role %s",
							 profile, in_cred ? cred_path : config_path, role_arn);
		return status;
	}
	if (role_arn)
	{
		f->hint = "Use static keys, web_identity_token_file, or a role given to the server itself (instance profile, container role).";
		return set_problem(f, FETCH_FAILED, "profile \"%s\" assumes role %s with %s, which is not supported",
						   profile, role_arn,
						   PROFILE_SETTING("source_profile") ? "source_profile" : "credential_source");
	}
	if (id && secret)
	{
		f->access_key_id = pstrdup(id);
		f->secret_access_key = pstrdup(secret);
		f->session_token = PROFILE_SETTING("aws_session_token")
			? pstrdup(PROFILE_SETTING("aws_session_token")) : NULL;
		return FETCH_FOUND;
	}
	if (id || secret)
		return set_problem(f, FETCH_FAILED, "profile \"%s\" has %s but no %s", profile,
						   id ? "aws_access_key_id" : "aws_secret_access_key",
						   id ? "aws_secret_access_key" : "aws_access_key_id");
	if (PROFILE_SETTING("credential_process"))
	{
		f->hint = "Run the program outside the database server and hand its output over through a shared credentials file or a container credentials endpoint.";
		return set_problem(f, FETCH_FAILED, "profile \"%s\" uses credential_process, which is not run inside the database server",
						   profile);
	}
	if (PROFILE_SETTING("sso_session") || PROFILE_SETTING("sso_start_url"))
		return set_problem(f, FETCH_FAILED, "profile \"%s\" uses IAM Identity Center (sso_*), which is not supported",
						   profile);
#undef PROFILE_SETTING
	return set_problem(f, named ? FETCH_FAILED : FETCH_ABSENT,
					   "profile \"%s\" has no credentials", profile);
}

/*
 * May the container endpoint be this URL?  https anywhere; plain http only
 * on loopback and the ECS and EKS link-local addresses, as the SDKs allow.
 */
static bool
container_url_allowed(const char *url)
{
	static const char *const hosts[] = {
		"localhost", "[::1]", "169.254.170.2", "169.254.170.23", "[fd00:ec2::23]", NULL
	};
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		ok = false;

	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		if (pg_strcasecmp(scheme, "https") == 0)
			ok = true;
		else if (pg_strcasecmp(scheme, "http") == 0)
		{
			ok = strncmp(host, "127.", 4) == 0;
			for (const char *const *h = hosts; !ok && *h; h++)
				ok = pg_strcasecmp(host, *h) == 0;
		}
	}
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

static FetchStatus
from_container(Fetched *f)
{
	const char *relative = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *token_file = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char	   *token = NULL;
	char	   *url;
	const char *headers[3] = {"Accept: application/json", NULL, NULL};
	long		timeout_ms = 1000L * env_int("AWS_METADATA_SERVICE_TIMEOUT", 1, 1, 3600);
	int			attempts = env_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 1, 10);
	long		status = 0;
	StringInfoData response;
	char	   *failure = NULL;
	FetchStatus result;

	f->source = ESD_CREDENTIALS_CONTAINER;
	if (relative == NULL && full == NULL)
		return set_problem(f, FETCH_ABSENT,
						   "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and AWS_CONTAINER_CREDENTIALS_FULL_URI are not set");
	url = relative ? psprintf("%s%s", ECS_CONTAINER_HOST, relative) : pstrdup(full);
	f->detail = url;
	if (relative == NULL && !container_url_allowed(full))
		return set_problem(f, FETCH_FAILED,
						   "AWS_CONTAINER_CREDENTIALS_FULL_URI \"%s\" is not allowed: plain http only to loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23",
						   full);

	if (token_file)
	{
		token = read_small_file(token_file, MAX_TOKEN_SIZE);
		if (token == NULL)
			return set_problem(f, FETCH_FAILED, "%s",
							   file_problem("container authorization token file", token_file));
		token = trim(token);
	}
	else if (env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
		token = pstrdup(env("AWS_CONTAINER_AUTHORIZATION_TOKEN"));
	if (token && strpbrk(token, "\r\n"))
		return set_problem(f, FETCH_FAILED, "the container authorization token has a line break");
	if (token && token[0])
		headers[1] = psprintf("Authorization: %s", token);

	if (!credential_http("GET", url, headers, NULL, timeout_ms, attempts,
						 &status, &response, &failure))
		result = set_problem(f, FETCH_FAILED, "the container endpoint %s did not answer: %s", url, failure);
	else if (status != 200)
		result = set_problem(f, FETCH_FAILED, "the container endpoint %s answered HTTP %ld: %s",
							 url, status, remote_text(response.data, response.len, token));
	else
		result = credentials_from_json(&response, psprintf("the container endpoint %s", url), f);

	if (headers[1])
		explicit_bzero((char *) headers[1], strlen(headers[1]));
	if (token)
		explicit_bzero(token, strlen(token));
	return result;
}

/*
 * IMDSv2: PUT a session token, then GET the role attached to the instance
 * and its credentials with that token.  IMDSv1 (no token) is never used.
 * No answer at all means there is no metadata service here: the search
 * ends with "not found" rather than a failure.
 */
static FetchStatus
from_instance_metadata(Fetched *f)
{
	const char *disabled = env("AWS_EC2_METADATA_DISABLED");
	const char *mode = env("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE");
	char	   *base;
	long		timeout_ms = 1000L * env_int("AWS_METADATA_SERVICE_TIMEOUT", 1, 1, 3600);
	int			attempts = env_int("AWS_METADATA_SERVICE_NUM_ATTEMPTS", 1, 1, 10);
	const char *token_headers[] = {"X-aws-ec2-metadata-token-ttl-seconds: " IMDS_TOKEN_TTL, NULL};
	const char *headers[2] = {NULL, NULL};
	long		status = 0;
	StringInfoData response;
	char	   *failure = NULL;
	char	   *role;
	char	   *nl;
	FetchStatus result;

	f->source = ESD_CREDENTIALS_INSTANCE_METADATA;
	if (disabled && pg_strcasecmp(disabled, "true") == 0)
		return set_problem(f, FETCH_ABSENT, "AWS_EC2_METADATA_DISABLED is true");
	if (env("AWS_EC2_METADATA_SERVICE_ENDPOINT"))
		base = pstrdup(env("AWS_EC2_METADATA_SERVICE_ENDPOINT"));
	else
		base = pstrdup(mode && pg_strcasecmp(mode, "IPv6") == 0 ? IMDS_IPV6_ENDPOINT : IMDS_DEFAULT_ENDPOINT);
	while (strlen(base) > 0 && base[strlen(base) - 1] == '/')
		base[strlen(base) - 1] = '\0';
	f->detail = base;

	if (!credential_http("PUT", psprintf("%s/latest/api/token", base), token_headers, "",
						 timeout_ms, attempts, &status, &response, &failure))
		return set_problem(f, FETCH_ABSENT, "no instance metadata service answered at %s: %s", base, failure);
	if (status != 200 || response.len == 0)
		return set_problem(f, FETCH_FAILED, "the instance metadata service at %s refused a session token: HTTP %ld",
						   base, status);
	headers[0] = psprintf("X-aws-ec2-metadata-token: %s", trim(response.data));
	if (strpbrk(headers[0], "\r\n"))
		return set_problem(f, FETCH_FAILED, "the instance metadata service at %s answered a malformed session token", base);

	if (!credential_http("GET", psprintf("%s/latest/meta-data/iam/security-credentials/", base),
						 headers, NULL, timeout_ms, attempts, &status, &response, &failure))
		return set_problem(f, FETCH_FAILED, "the instance metadata service at %s did not answer: %s", base, failure);
	if (status == 404)
		return set_problem(f, FETCH_FAILED, "no IAM role is attached to this instance (instance metadata at %s)", base);
	if (status != 200)
		return set_problem(f, FETCH_FAILED, "the instance metadata service at %s answered HTTP %ld for the role name",
						   base, status);
	role = trim(response.data);
	if ((nl = strchr(role, '\n')) != NULL)
		*nl = '\0';
	role = trim(role);
	if (role[0] == '\0' || strpbrk(role, "/?#% "))
		return set_problem(f, FETCH_FAILED, "the instance metadata service at %s answered no usable role name", base);
	f->detail = psprintf("role \"%s\" at %s", role, base);

	if (!credential_http("GET", psprintf("%s/latest/meta-data/iam/security-credentials/%s", base, role),
						 headers, NULL, timeout_ms, attempts, &status, &response, &failure))
		result = set_problem(f, FETCH_FAILED, "the instance metadata service at %s did not answer: %s", base, failure);
	else if (status != 200)
		result = set_problem(f, FETCH_FAILED, "the instance metadata service at %s answered HTTP %ld for role \"%s\"",
							 base, status, role);
	else
		result = credentials_from_json(&response, psprintf("the instance metadata service at %s", base), f);
	explicit_bzero((char *) headers[0], strlen(headers[0]));
	return result;
}

/*
 * The ambient chain, in the SDKs' order.  `tried` collects why each source
 * skipped gave nothing, for the "not found" error.
 */
static FetchStatus
fetch_chain(const char *profile, const char *region, Fetched *f, StringInfo tried)
{
	const char *env_profile = env("AWS_PROFILE");
	const char *name = profile ? profile : env_profile ? env_profile : "default";
	bool		named = profile != NULL || env_profile != NULL;
	FetchStatus status;
	int			step;

	for (step = 0; step < 5; step++)
	{
		memset(f, 0, sizeof(*f));
		switch (step)
		{
			case 0:
				/* the SDKs skip the environment's keys when a profile is named */
				if (named)
					continue;
				status = from_environment(f);
				break;
			case 1:
				status = from_profile(name, named, region, f);
				break;
			case 2:
				status = from_web_identity(region, f);
				break;
			case 3:
				status = from_container(f);
				break;
			default:
				status = from_instance_metadata(f);
				break;
		}
		if (status != FETCH_ABSENT)
			return status;
		appendStringInfo(tried, "%s%s: %s", tried->len > 0 ? "; " : "",
						 esd_credential_source_name(f->source), f->problem);
	}
	return FETCH_ABSENT;
}

/* ---------------------------------------------------------------------
 * The cache
 * ---------------------------------------------------------------------
 */

static EsdCredentials *
cache_entry(const char *profile, const char *region)
{
	EsdCredentials *c;

	for (c = cache; c; c = c->next)
		if (strcmp(c->region, region) == 0 &&
			((c->profile == NULL && profile == NULL) ||
			 (c->profile && profile && strcmp(c->profile, profile) == 0)))
			return c;

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "event_store_dynamo credentials",
										  ALLOCSET_SMALL_SIZES);
	c = MemoryContextAllocZero(cache_cxt, sizeof(EsdCredentials));
	c->profile = profile ? MemoryContextStrdup(cache_cxt, profile) : NULL;
	c->region = MemoryContextStrdup(cache_cxt, region);
	c->next = cache;
	cache = c;
	return c;
}

/* Put fetched credentials into a cache entry, forgetting the old ones. */
static void
store(EsdCredentials *c, Fetched *f)
{
	TimestampTz now = GetCurrentTimestamp();

	forget(c->access_key_id);
	forget(c->secret_access_key);
	forget(c->session_token);
	if (c->detail)
		pfree(c->detail);

	c->source = f->source;
	c->detail = MemoryContextStrdup(cache_cxt, f->detail ? f->detail : "");
	c->access_key_id = MemoryContextStrdup(cache_cxt, f->access_key_id);
	c->secret_access_key = MemoryContextStrdup(cache_cxt, f->secret_access_key);
	c->session_token = f->session_token ? MemoryContextStrdup(cache_cxt, f->session_token) : NULL;
	c->expiration = f->expiration;
	c->generation++;

	/* five minutes before expiry, or halfway for a shorter remaining life */
	if (c->expiration == 0)
		c->refresh_at = 0;
	else if (c->expiration <= now)
		c->refresh_at = now + (TimestampTz) REFRESH_RETRY_MS * 1000;
	else
		c->refresh_at = c->expiration -
			Min((TimestampTz) REFRESH_WINDOW_MS * 1000, (c->expiration - now) / 2);

	explicit_bzero(f->secret_access_key, strlen(f->secret_access_key));
	if (f->session_token)
		explicit_bzero(f->session_token, strlen(f->session_token));
}

/*
 * Fetch a cache entry's credentials again.  Forced (after an expired-token
 * answer) or with the current ones expired, a failure is an error;
 * otherwise it warns and the current ones stay in use a little longer.
 */
static void
refresh(EsdCredentials *c, bool forced)
{
	Fetched		f;
	StringInfoData tried;
	FetchStatus status;
	const char *problem;

	initStringInfo(&tried);
	status = fetch_chain(c->profile, c->region, &f, &tried);
	if (status == FETCH_FOUND)
	{
		store(c, &f);
		return;
	}
	problem = status == FETCH_FAILED ? f.problem : psprintf("no source has credentials any more: %s", tried.data);

	if (!forced && c->expiration != 0 && GetCurrentTimestamp() < c->expiration)
	{
		ereport(WARNING,
				(errmsg("could not refresh the AWS credentials from %s", c->detail),
				 errdetail("%s", problem),
				 errhint("The current credentials stay in use until they expire at %s.",
						 timestamptz_to_str(c->expiration))));
		c->refresh_at = Min(GetCurrentTimestamp() + (TimestampTz) REFRESH_RETRY_MS * 1000,
							c->expiration);
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("could not refresh the AWS credentials from %s", c->detail),
			 errdetail("%s", problem),
			 f.hint ? errhint("%s", f.hint) : 0));
}

/* ---------------------------------------------------------------------
 * The interface
 * ---------------------------------------------------------------------
 */

EsdCredentials *
esd_credentials_resolve(const EsdCredentialRequest *req)
{
	EsdCredentials *c;

	if (req->access_key_id || req->secret_access_key || req->session_token)
	{
		if (req->access_key_id == NULL || req->secret_access_key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("incomplete AWS credentials in the user mapping for server \"%s\"",
							req->server_name),
					 errdetail("The user mapping has %s but no %s.",
							   req->access_key_id ? "access_key_id" : req->secret_access_key ? "secret_access_key" : "session_token",
							   req->access_key_id ? "secret_access_key" : "access_key_id"),
					 errhint("Set both access_key_id and secret_access_key, or neither to use the server's ambient credentials.")));
		c = palloc0(sizeof(EsdCredentials));
		c->source = ESD_CREDENTIALS_USER_MAPPING;
		c->detail = "user mapping";
		c->access_key_id = pstrdup(req->access_key_id);
		c->secret_access_key = pstrdup(req->secret_access_key);
		c->session_token = req->session_token ? pstrdup(req->session_token) : NULL;
		c->generation = 1;
		return c;
	}

	if (!req->use_ambient && !superuser_arg(req->userid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("no AWS credentials for role \"%s\" on server \"%s\"",
						GetUserNameFromId(req->userid, false), req->server_name),
				 errdetail("No user mapping gives the role access_key_id and secret_access_key, and only superusers may use the credentials of the server process unless the server allows it."),
				 errhint("Add access_key_id and secret_access_key to the user mapping, or ask a superuser to set the server option use_ambient_credentials to true.")));

	c = cache_entry(req->profile, req->region);
	if (c->generation == 0)
	{
		Fetched		f;
		StringInfoData tried;
		FetchStatus status;

		initStringInfo(&tried);
		status = fetch_chain(req->profile, req->region, &f, &tried);
		if (status == FETCH_FAILED)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("could not get AWS credentials from %s for server \"%s\"",
							esd_credential_source_name(f.source), req->server_name),
					 errdetail("%s", f.problem),
					 f.hint ? errhint("%s", f.hint) : 0));
		if (status == FETCH_ABSENT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("no AWS credentials found for server \"%s\"", req->server_name),
					 errdetail("Looked in order at: %s.", tried.data),
					 errhint("Add access_key_id and secret_access_key to the user mapping, or give the server process credentials: environment, shared files, web identity, a container endpoint or an instance role.")));
		store(c, &f);
	}
	return esd_credentials_current(c);
}

EsdCredentials *
esd_conn_credentials(const EsdConnOptions *conn)
{
	/* resolved once and kept with the options: the cache of a const struct */
	EsdConnOptions *c = (EsdConnOptions *) conn;

	if (c->credentials == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(c->cxt ? c->cxt : CurrentMemoryContext);

		c->credentials = esd_credentials_resolve(&c->credential_request);
		MemoryContextSwitchTo(old);
	}
	return c->credentials;
}

EsdCredentials *
esd_credentials_current(EsdCredentials *creds)
{
	if (creds->source != ESD_CREDENTIALS_USER_MAPPING && creds->refresh_at != 0 &&
		GetCurrentTimestamp() >= creds->refresh_at)
		refresh(creds, false);
	return creds;
}

bool
esd_credentials_expired(EsdCredentials *creds, uint32 generation)
{
	if (creds->source == ESD_CREDENTIALS_USER_MAPPING)
		return false;
	if (creds->generation == generation)
		refresh(creds, true);
	return true;
}

/* ---------------------------------------------------------------------
 * SQL: which credentials am I using?
 * ---------------------------------------------------------------------
 */

/* A text datum (cstring_to_text lives in utils/builtins.h, see above). */
static Datum
text_datum(const char *s)
{
	size_t		len = strlen(s);
	text	   *t = palloc(len + VARHDRSZ);

	SET_VARSIZE(t, len + VARHDRSZ);
	memcpy(VARDATA(t), s, len);
	return PointerGetDatum(t);
}

PG_FUNCTION_INFO_V1(event_store_dynamo_credentials_in_use);

/*
 * credentials_in_use(server): the source of the credentials the current
 * role gets for the server, the last four characters of the access key id,
 * their expiry and where exactly they came from.  Never a secret.
 */
Datum
event_store_dynamo_credentials_in_use(PG_FUNCTION_ARGS)
{
	ForeignServer *server = GetForeignServerByName(NameStr(*PG_GETARG_NAME(0)), false);
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);
	AclResult	aclresult;
	EsdConnOptions conn;
	EsdCredentials *c;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};
	size_t		len;

	if (strcmp(fdw->fdwname, "event_store_dynamo") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("server \"%s\" does not use the event_store_dynamo foreign-data wrapper",
						server->servername)));
	aclresult = pg_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_FOREIGN_SERVER, server->servername);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	esd_get_conn_options(server->serverid, GetUserId(), &conn);
	c = esd_credentials_current(esd_conn_credentials(&conn));

	len = strlen(c->access_key_id);
	values[0] = text_datum(esd_credential_source_name(c->source));
	values[1] = text_datum(c->access_key_id + (len > 4 ? len - 4 : 0));
	values[2] = TimestampTzGetDatum(c->expiration);
	nulls[2] = c->expiration == 0;
	values[3] = text_datum(c->detail);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
