#!/bin/sh
# Backs up mlwiki: the PostgreSQL database (pg_dump, custom format) and the stored files
# (export reports), into a new directory DIRECTORY/mlwiki-<UTC time>/. See deploy/backup.md
# for restoring and verifying a backup.
#
#   DATABASE_URL=postgres://mlwiki@db.internal:5432/mlwiki deploy/backup.sh /backups
#
# Reads DATABASE_URL (give the password in PGPASSWORD or ~/.pgpass rather than in the URL:
# a URL's password shows in the process list), and where the files are: the local
# directory MEDIA_ROOT (default: media/ beside deploy/), or with AWS_STORAGE_BUCKET_NAME
# the S3 bucket (copied with the aws command line, `aws s3 sync`; AWS_S3_ENDPOINT_URL for
# an S3-compatible server, credentials as the aws command reads them).
# AUDIT_HMAC_KEY is never needed here and never written: it is not in the database.
set -eu

destination=${1:?usage: deploy/backup.sh DIRECTORY}
: "${DATABASE_URL:?set DATABASE_URL to the database to back up}"
backup="$destination/mlwiki-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$backup"

# One consistent snapshot of the database, however long it takes.
pg_dump --format=custom --no-owner --no-privileges --file="$backup/database.dump" "$DATABASE_URL"
# The archive can be read back (a truncated or corrupt dump fails here, not at restore).
pg_restore --list "$backup/database.dump" >/dev/null

# The files after the database: every file a row of the dump names is already stored (an
# export is stored before its row says so), so the copy holds all of them.
if [ -n "${AWS_STORAGE_BUCKET_NAME:-}" ]; then
    # Only mlwiki's part of a shared bucket (AWS_LOCATION, its key prefix).
    aws s3 sync ${AWS_S3_ENDPOINT_URL:+--endpoint-url "$AWS_S3_ENDPOINT_URL"} \
        ${AWS_S3_REGION_NAME:+--region "$AWS_S3_REGION_NAME"} \
        "s3://$AWS_STORAGE_BUCKET_NAME/${AWS_LOCATION:-}" "$backup/files"
    tar -C "$backup" -czf "$backup/files.tar.gz" files
    rm -r "$backup/files"
else
    media=${MEDIA_ROOT:-$(dirname "$0")/../media}
    mkdir -p "$media"
    tar -C "$media" -czf "$backup/files.tar.gz" .
fi

(cd "$backup" && sha256sum database.dump files.tar.gz >SHA256SUMS)
echo "$backup"
