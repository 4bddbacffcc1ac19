"""Start the test provider: ``python -m tests.oidc_provider.serve`` with PROVIDER_DB,
PROVIDER_RSA_KEY and PROVIDER_CLIENT (JSON: client_id, client_secret, redirect_uris,
post_logout_redirect_uris, users: {name: [password, [groups]]}). It listens on a free
port of 127.0.0.1 and prints "ready <port>" once it serves."""

import json
import os
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def main():
    # The port first: the issuer (in the settings) names it.
    server = make_server("127.0.0.1", 0, None, server_class=Server, handler_class=QuietHandler)
    port = server.server_address[1]
    os.environ["PROVIDER_ISSUER"] = f"http://127.0.0.1:{port}/o"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0)
    client = json.loads(os.environ["PROVIDER_CLIENT"])
    for name, (password, groups) in client["users"].items():
        user = User.objects.create_user(name, email=f"{name}@example.com", password=password)
        user.first_name = name.title()
        user.save()
        user.groups.set([Group.objects.get_or_create(name=group)[0] for group in groups])
    Application.objects.create(
        name="mlwiki",
        client_id=client["client_id"],
        client_secret=client["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(client["redirect_uris"]),
        post_logout_redirect_uris=" ".join(client["post_logout_redirect_uris"]),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,
    )
    server.set_app(get_wsgi_application())
    print(f"ready {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
