#ifndef CB_ICALLIB_H
#define CB_ICALLIB_H
/* libical through dlopen: it pulls in ICU and the C++ runtime (3.8 MB resident), which a
 * bridge without calendar sources should not carry. ical.c includes this header after
 * libical's own, and its calls to these functions go through the table, filled when the first
 * feed is read. */
#include <libical/ical.h>

#include "err.h"

#define ICALLIB_FUNCS(X)                                                                           \
	X(icalcomponent_count_properties)                                                          \
	X(icalcomponent_free)                                                                      \
	X(icalcomponent_get_description)                                                           \
	X(icalcomponent_get_first_component)                                                       \
	X(icalcomponent_get_first_property)                                                        \
	X(icalcomponent_get_location)                                                              \
	X(icalcomponent_get_next_component)                                                        \
	X(icalcomponent_get_next_property)                                                         \
	X(icalcomponent_get_sequence)                                                              \
	X(icalcomponent_get_status)                                                                \
	X(icalcomponent_get_summary)                                                               \
	X(icalcomponent_get_uid)                                                                   \
	X(icalcomponent_remove_property)                                                           \
	X(icalerror_clear_errno)                                                                   \
	X(icalerror_set_errors_are_fatal)                                                          \
	X(icalparameter_get_range)                                                                 \
	X(icalparameter_get_tzid)                                                                  \
	X(icalparser_parse_string)                                                                 \
	X(icalproperty_free)                                                                       \
	X(icalproperty_get_attendee)                                                               \
	X(icalproperty_get_dtend)                                                                  \
	X(icalproperty_get_dtstart)                                                                \
	X(icalproperty_get_duration)                                                               \
	X(icalproperty_get_exdate)                                                                 \
	X(icalproperty_get_first_parameter)                                                        \
	X(icalproperty_get_organizer)                                                              \
	X(icalproperty_get_rdate)                                                                  \
	X(icalproperty_get_recurrenceid)                                                           \
	X(icalproperty_get_rrule)                                                                  \
	X(icalproperty_get_value_as_string)                                                        \
	X(icalproperty_get_xlicerror)                                                              \
	X(icalproperty_status_to_string)                                                           \
	X(icalrecur_skip_to_string)                                                                \
	X(icalrecurrencetype_day_day_of_week)                                                      \
	X(icalrecurrencetype_day_position)                                                         \
	X(icalrecurrencetype_from_string)                                                          \
	X(icalrecurrencetype_month_is_leap)                                                        \
	X(icalrecurrencetype_month_month)                                                          \
	X(icaltime_from_string)                                                                    \
	X(icaltime_is_null_time)                                                                   \
	X(icaltime_is_utc)                                                                         \
	X(icaltime_is_valid_time)                                                                  \
	X(icaltime_null_time)                                                                      \
	X(icaltimezone_free)                                                                       \
	X(icaltimezone_get_builtin_timezone)                                                       \
	X(icaltimezone_get_location)                                                               \
	X(icaltimezone_get_utc_offset_of_utc_time)                                                 \
	X(icaltimezone_get_utc_timezone)                                                           \
	X(icaltimezone_new)                                                                        \
	X(icaltimezone_set_component)

struct icallib_fns {
#define ICALLIB_SLOT(f) __typeof__(&f) f;
	ICALLIB_FUNCS(ICALLIB_SLOT)
#undef ICALLIB_SLOT
};
extern struct icallib_fns icallib_fns;

/* Loads libical once (thread-safe); 0, or -1 with err saying what to install. */
int icallib_load(struct err *err);

#ifndef ICALLIB_NO_REDIRECT
#define icalcomponent_count_properties     (*icallib_fns.icalcomponent_count_properties)
#define icalcomponent_free                 (*icallib_fns.icalcomponent_free)
#define icalcomponent_get_description      (*icallib_fns.icalcomponent_get_description)
#define icalcomponent_get_first_component  (*icallib_fns.icalcomponent_get_first_component)
#define icalcomponent_get_first_property   (*icallib_fns.icalcomponent_get_first_property)
#define icalcomponent_get_location         (*icallib_fns.icalcomponent_get_location)
#define icalcomponent_get_next_component   (*icallib_fns.icalcomponent_get_next_component)
#define icalcomponent_get_next_property    (*icallib_fns.icalcomponent_get_next_property)
#define icalcomponent_get_sequence         (*icallib_fns.icalcomponent_get_sequence)
#define icalcomponent_get_status           (*icallib_fns.icalcomponent_get_status)
#define icalcomponent_get_summary          (*icallib_fns.icalcomponent_get_summary)
#define icalcomponent_get_uid              (*icallib_fns.icalcomponent_get_uid)
#define icalcomponent_remove_property      (*icallib_fns.icalcomponent_remove_property)
#define icalerror_clear_errno              (*icallib_fns.icalerror_clear_errno)
#define icalerror_set_errors_are_fatal     (*icallib_fns.icalerror_set_errors_are_fatal)
#define icalparameter_get_range            (*icallib_fns.icalparameter_get_range)
#define icalparameter_get_tzid             (*icallib_fns.icalparameter_get_tzid)
#define icalparser_parse_string            (*icallib_fns.icalparser_parse_string)
#define icalproperty_free                  (*icallib_fns.icalproperty_free)
#define icalproperty_get_attendee          (*icallib_fns.icalproperty_get_attendee)
#define icalproperty_get_dtend             (*icallib_fns.icalproperty_get_dtend)
#define icalproperty_get_dtstart           (*icallib_fns.icalproperty_get_dtstart)
#define icalproperty_get_duration          (*icallib_fns.icalproperty_get_duration)
#define icalproperty_get_exdate            (*icallib_fns.icalproperty_get_exdate)
#define icalproperty_get_first_parameter   (*icallib_fns.icalproperty_get_first_parameter)
#define icalproperty_get_organizer         (*icallib_fns.icalproperty_get_organizer)
#define icalproperty_get_rdate             (*icallib_fns.icalproperty_get_rdate)
#define icalproperty_get_recurrenceid      (*icallib_fns.icalproperty_get_recurrenceid)
#define icalproperty_get_rrule             (*icallib_fns.icalproperty_get_rrule)
#define icalproperty_get_value_as_string   (*icallib_fns.icalproperty_get_value_as_string)
#define icalproperty_get_xlicerror         (*icallib_fns.icalproperty_get_xlicerror)
#define icalproperty_status_to_string      (*icallib_fns.icalproperty_status_to_string)
#define icalrecur_skip_to_string           (*icallib_fns.icalrecur_skip_to_string)
#define icalrecurrencetype_day_day_of_week (*icallib_fns.icalrecurrencetype_day_day_of_week)
#define icalrecurrencetype_day_position    (*icallib_fns.icalrecurrencetype_day_position)
#define icalrecurrencetype_from_string     (*icallib_fns.icalrecurrencetype_from_string)
#define icalrecurrencetype_month_is_leap   (*icallib_fns.icalrecurrencetype_month_is_leap)
#define icalrecurrencetype_month_month     (*icallib_fns.icalrecurrencetype_month_month)
#define icaltime_from_string               (*icallib_fns.icaltime_from_string)
#define icaltime_is_null_time              (*icallib_fns.icaltime_is_null_time)
#define icaltime_is_utc                    (*icallib_fns.icaltime_is_utc)
#define icaltime_is_valid_time             (*icallib_fns.icaltime_is_valid_time)
#define icaltime_null_time                 (*icallib_fns.icaltime_null_time)
#define icaltimezone_free                  (*icallib_fns.icaltimezone_free)
#define icaltimezone_get_builtin_timezone  (*icallib_fns.icaltimezone_get_builtin_timezone)
#define icaltimezone_get_location          (*icallib_fns.icaltimezone_get_location)
#define icaltimezone_get_utc_offset_of_utc_time                                                    \
	(*icallib_fns.icaltimezone_get_utc_offset_of_utc_time)
#define icaltimezone_get_utc_timezone (*icallib_fns.icaltimezone_get_utc_timezone)
#define icaltimezone_new              (*icallib_fns.icaltimezone_new)
#define icaltimezone_set_component    (*icallib_fns.icaltimezone_set_component)
#endif

#endif
