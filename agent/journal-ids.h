/* journal-ids.h — the MESSAGE_ID of each kind of record modelgated writes. Fixed
 * forever: `journalctl MESSAGE_ID=...` and the catalog (systemd/modelgated.catalog)
 * depend on them. */
#ifndef MODELGATE_JOURNAL_IDS_H
#define MODELGATE_JOURNAL_IDS_H

#define MG_MSGID_DENY          "966a605851b94b62857b0c2ef03ac8fa"   /* an open was refused */
#define MG_MSGID_ALLOW         "c49c4b1fb3724277bdb9d723f3471d90"   /* an open was allowed after a scan */
#define MG_MSGID_AUDIT_DENY    "3c69e9968d154135845257d87fab3266"   /* audit mode: would have refused */
#define MG_MSGID_SCAN_FAILURE  "f88dbbd8526d45dc9f9a0966fc7a922b"   /* worker crash/timeout/queue full: on_error applied */
#define MG_MSGID_RELOAD        "8ddf938f136545328efd2ac75b227463"   /* policy reloaded */
#define MG_MSGID_RELOAD_FAILED "014c2b32f8c94992a7e920e1ae86c7b1"   /* policy reload refused, old policy kept */
#define MG_MSGID_STARTED       "c8b6593029b74d39bc786669aea2da60"   /* marks placed, READY=1 sent */
#define MG_MSGID_STOPPING      "7d67f4670176452aaf56c57ff87d46fc"   /* SIGTERM: pending events answered */
#define MG_MSGID_STATE         "ae2a9a8d3af54e5e8f9242cd7c4a3386"   /* verdict store / attestations loaded, or one skipped */
#define MG_MSGID_QUEUE_DROPPED "5859a2c4ce894de5971d0fd2afbbd885"   /* log records dropped by the bounded queue */

#endif
