#ifndef CB_MAPPINGS_H
#define CB_MAPPINGS_H
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "diag.h"
#include "err.h"
#include "jpos.h"

/* Mapping files: how each Discord server follows the programme.
 *
 * mappings_load reads every *.json directly in a directory (not *.schema.json, not
 * subdirectories), validates each against mappings/mapping.schema.json and then against the
 * rules a schema cannot express (names unique, references defined, time zones known to
 * libical, sources declared in the configuration and of the right type, template variables
 * known, Discord's limits where they are known without a roster). The result is immutable: a
 * reload builds a new one and swaps it in. Explicit cohorts are complete; cohort sets stay
 * rules until mappings_expand_set meets the roster's distinct values. */

/* A Discord role the bridge keeps (a staff role or another named role). */
struct mappings_role {
	char *key;  /* the short name the file uses (coach) */
	char *name; /* the Discord role's name (Coach) */
	int color;  /* 0xRRGGBB, -1 when not given */
};

/* One way a membership belongs to a cohort: every non-NULL field must be equal. */
struct mappings_match {
	char *source; /* NULL: any source */
	char *group;  /* a group id in source */
	char *city, *program, *cohort;
};

struct mappings_cohort {
	char *name;
	char *role;
	int color; /* -1: none */
	struct mappings_match *matches;
	size_t nmatches;
	char *time_zone;               /* IANA, known to libical */
	char *country;                 /* ISO 3166-1, NULL when not given */
	char *region;                  /* ISO 3166-2, NULL when not given */
	char *category, *text, *voice; /* rendered names; voice NULL when there is none */
	char **staff;                  /* keys of staff_roles */
	size_t nstaff;
	char *end_date; /* YYYY-MM-DD, NULL: open-ended */
	struct jpos pos;
};

struct mappings_place {
	char *city;
	char *time_zone, *country, *region; /* NULL: the set's */
};

struct mappings_end_date {
	char *cohort, *date;
};

/* A rule that makes cohorts from the roster's distinct (city, program, cohort) values. */
struct mappings_cohort_set {
	char *source;    /* NULL: every roster source */
	char **where[3]; /* allowed city, program, cohort values; NULL-terminated, NULL: any */
	char *name, *role, *category, *text, *voice; /* templates; voice NULL for none */
	int color;
	char *time_zone, *country, *region;
	struct mappings_place *cities;
	size_t ncities;
	struct mappings_end_date *end_dates;
	size_t nend_dates;
	char **staff;
	size_t nstaff;
	struct jpos pos;
};

enum mappings_proof {
	MAPPINGS_PROOF_NONE, /* no registration section */
	MAPPINGS_PROOF_PRETIX_ORDER,
	MAPPINGS_PROOF_LMS_CODE,
	MAPPINGS_PROOF_STAFF_APPROVAL,
};

struct mappings_registration {
	enum mappings_proof proof;
	char **sources;
	size_t nsources;
	char *registration_channel, *help_channel, *approval_channel, *audit_channel;
	unsigned attempts_per_user, attempts_per_entry, attempts_window_minutes;
	unsigned code_minutes;
	bool set_nickname;
};

struct mappings_role_rule {
	char *source;
	char **items, **variations; /* group ids of kind item, variation ("12/3") */
	size_t nitems, nvariations;
	char **roles; /* keys of roles or staff_roles */
	size_t nroles;
};

/* The texts people see. Each key allows the variables listed in mappings/README.md. */
enum mappings_text {
	MT_REGISTRATION_MESSAGE,
	MT_REGISTER_BUTTON,
	MT_PICK_CITY,
	MT_PICK_PROGRAM,
	MT_PICK_COHORT,
	MT_IDENTIFIER_LABEL,
	MT_ORDER_CODE_LABEL,
	MT_ORDER_NAME_LABEL,
	MT_CODE_SENT,
	MT_CODE_MESSAGE,
	MT_ENTER_CODE_BUTTON,
	MT_CODE_LABEL,
	MT_APPROVAL_PENDING,
	MT_APPROVAL_REQUEST,
	MT_REGISTERED,
	MT_DENIED,
	MT_FAIL_NOT_FOUND,
	MT_FAIL_WRONG_PROOF,
	MT_FAIL_TAKEN,
	MT_FAIL_TOO_MANY,
	MT_FAIL_CODE_EXPIRED,
	MT_FAIL_SOURCE_DOWN,
	MT_AUDIT_REGISTERED,
	MT_AUDIT_FAILED,
	MT_REMOVALS_CONFIRM,
	MT_REMOVALS_BUTTON,
	MT_REMOVALS_CONFIRMED,
	MT_REMOVALS_OUTDATED,
	MT_SOURCE_FAILING,
	MT_SOURCE_RECOVERED,
	MT_APPROVE_BUTTON,
	MT_DENY_BUTTON,
	MT_APPROVED_BY,
	MT_DENIED_BY,
	MT_ALREADY_DECIDED,
	MT_NOTHING_PENDING,
	MT_NOT_SET_UP,
	MT_ERROR,
	MT_UNAVAILABLE,
	MT_STAFF_ONLY,
	MT_RESTARTING,
	MT_MORE_CHOICES,
	MT_COUNT
};

struct mappings_guild {
	char *file; /* the path it came from */
	char *guild_id;
	char *label; /* NULL when not given */
	struct mappings_role *staff_roles, *roles;
	size_t nstaff_roles, nroles;
	struct mappings_cohort *cohorts;
	size_t ncohorts;
	struct mappings_cohort_set *sets;
	size_t nsets;
	struct mappings_registration registration;
	struct mappings_role_rule *role_rules;
	size_t nrole_rules;
	char *texts[MT_COUNT]; /* the file's or the built-in one */
	double removals_confirm_share;
};

struct mappings {
	char *dir;
	size_t nfiles;
	struct mappings_guild *guilds; /* sorted by file name */
	size_t nguilds;
};

/* Loads dir. cfg gives the declared sources (borrowed, not kept). A directory that does not
 * exist is an error only when must_exist (the configuration named it); otherwise it holds no
 * mappings. Problems go to diags as file:line:column; returns NULL when there were any (or err
 * for I/O and memory). */
struct mappings *mappings_load(const char *dir, const struct config *cfg, int must_exist,
                               struct diags *diags, struct err *err);

void mappings_free(struct mappings *m);

/* The guild's mappings, or NULL. */
const struct mappings_guild *mappings_guild(const struct mappings *m, const char *guild_id);

/* Explicit cohorts over every guild. */
size_t mappings_cohort_count(const struct mappings *m);
size_t mappings_set_count(const struct mappings *m);

/* A distinct (city, program, cohort) from the roster; any may be NULL. */
struct mappings_tuple {
	const char *source;
	const char *city, *program, *cohort;
};

/* Expands set against the roster's distinct tuples into new cohorts (*out, *nout; free with
 * mappings_cohorts_free). Tuples outside the set's source or where are skipped, as are tuples
 * lacking a value the templates use (each such skip adds a diagnostic at the set when diags
 * is not NULL). Tuples whose names come out the same make one cohort with several matches.
 * 0, or -1 with err (memory). */
int mappings_expand_set(const struct mappings_guild *g, const struct mappings_cohort_set *set,
                        const struct mappings_tuple *tuples, size_t ntuples,
                        struct mappings_cohort **out, size_t *nout, struct diags *diags,
                        struct err *err);

void mappings_cohorts_free(struct mappings_cohort *v, size_t n);

/* Renders tpl, replacing {var} with its value from vars (name, value pairs ending with a NULL
 * name; a NULL value is "") and {{ }} with single braces. Returns a new string, or NULL with
 * err naming the first variable that vars lacks, or a brace left open. */
char *mappings_render(const char *tpl, const char *const *vars, struct err *err);

/* The text for key in g (the file's, else the built-in one), and its key name. */
const char *mappings_text_get(const struct mappings_guild *g, enum mappings_text key);
const char *mappings_text_key(enum mappings_text key);

/* The published JSON Schema, as compiled into the binary. */
const char *mappings_schema_text(void);

#endif
