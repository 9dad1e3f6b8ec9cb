/*-------------------------------------------------------------------------
 *
 * credentials.h
 *	  The AWS credentials a request is signed with: the user mapping's keys,
 *	  or the server process's ambient credentials found the way the AWS SDKs
 *	  find them, cached per backend and refreshed before they expire.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ESD_CREDENTIALS_H
#define ESD_CREDENTIALS_H

#include "postgres.h"

#include "datatype/timestamp.h"

#include "option.h"

/* Where a set of credentials came from, in the order they are looked for. */
typedef enum EsdCredentialSource
{
	ESD_CREDENTIALS_USER_MAPPING,
	ESD_CREDENTIALS_ENVIRONMENT,
	ESD_CREDENTIALS_PROFILE,
	ESD_CREDENTIALS_WEB_IDENTITY,
	ESD_CREDENTIALS_CONTAINER,
	ESD_CREDENTIALS_INSTANCE_METADATA
} EsdCredentialSource;

/*
 * A set of credentials.  Those of a user mapping live as long as the query
 * that read them; ambient ones live in the backend's cache, and their
 * strings are replaced on every refresh, so callers hold the struct and
 * read the strings only through esd_credentials_current().
 */
typedef struct EsdCredentials
{
	EsdCredentialSource source;
	char	   *detail;			/* where exactly, without secrets */
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL for long-term keys */
	TimestampTz expiration;		/* 0 when they do not expire */
	uint32		generation;		/* bumped on every refresh */

	/* private to credentials.c */
	TimestampTz refresh_at;		/* 0: never proactively */
	char	   *profile;		/* the profile asked for; NULL: the default chain */
	char	   *region;
	struct EsdCredentials *next;	/* the cache's list */
} EsdCredentials;

/*
 * The credentials for a server and role: the user mapping's keys, else the
 * ambient chain (for superusers, or when use_ambient is set).  Raises an
 * error, with what was tried, when none can be had.
 */
extern EsdCredentials *esd_credentials_resolve(const EsdCredentialRequest *req);

/*
 * The credentials of a server's options, resolved the first time they are
 * asked for (then kept with the options, in their memory context).
 */
extern EsdCredentials *esd_conn_credentials(const EsdConnOptions *conn);

/* The credentials to sign with now, refreshed first when they are due. */
extern EsdCredentials *esd_credentials_current(EsdCredentials *creds);

/*
 * AWS said the credentials of the given generation have expired: refresh
 * them now, unless that has happened since.  False when they cannot be
 * refreshed (a user mapping's keys), so a retry would not help.
 */
extern bool esd_credentials_expired(EsdCredentials *creds, uint32 generation);

/* "user mapping", "environment", ... as the credentials_in_use() function shows it */
extern const char *esd_credential_source_name(EsdCredentialSource source);

#endif							/* ESD_CREDENTIALS_H */
