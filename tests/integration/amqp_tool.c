/* amqp_tool.c — the broker side of tests/integration/amqp_cn.py, over librabbitmq (so the
 * test needs no AMQP client library beyond the one ewtpd uses, and no management plugin).
 *
 *   ewtp-amqp-tool wait    PORT SECONDS                 until a login succeeds (exit 0) or not
 *   ewtp-amqp-tool declare PORT EXCHANGE QUEUE KEY      durable direct exchange + queue + binding
 *   ewtp-amqp-tool queue   PORT QUEUE                   a durable queue
 *   ewtp-amqp-tool publish PORT EXCHANGE KEY FILE [ID]  persistent, confirmed
 *   ewtp-amqp-tool get     PORT QUEUE OUTFILE           prints
 * "message_id\tcontent_type\tdelivery_mode"; exit 3 when the queue is empty ewtp-amqp-tool count
 * PORT QUEUE                   prints the number of ready messages
 *
 * The broker is 127.0.0.1:PORT, vhost "/", user and password from $AMQP_USER / $AMQP_PASS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

static int ok(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return 1;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        fprintf(stderr, "%s: %s\n", what, amqp_error_string2(r.library_error));
    else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        fprintf(stderr, "%s: %u %.*s\n", what, m->reply_code, (int)m->reply_text.len,
                (char *)m->reply_text.bytes);
    } else
        fprintf(stderr, "%s: failed (%d)\n", what, (int)r.reply_type);
    return 0;
}

static amqp_connection_state_t open_conn(int port, int quiet)
{
    const char *user = getenv("AMQP_USER"), *pass = getenv("AMQP_PASS");
    amqp_connection_state_t c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    struct timeval tv = {5, 0};
    if (s == NULL || amqp_socket_open_noblock(s, "127.0.0.1", port, &tv) != AMQP_STATUS_OK) {
        if (!quiet)
            fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", port);
        amqp_destroy_connection(c);
        return NULL;
    }
    amqp_set_rpc_timeout(c, &tv);
    amqp_rpc_reply_t r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                                    user ? user : "guest", pass ? pass : "guest");
    if (!(quiet ? r.reply_type == AMQP_RESPONSE_NORMAL : ok(r, "login"))) {
        amqp_destroy_connection(c);
        return NULL;
    }
    amqp_channel_open(c, 1);
    if (!ok(amqp_get_rpc_reply(c), "channel.open")) {
        amqp_destroy_connection(c);
        return NULL;
    }
    return c;
}

static void close_conn(amqp_connection_state_t c)
{
    amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                break;
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: see the comment at the top of amqp_tool.c\n");
        return 2;
    }
    const char *cmd = argv[1];
    int port = atoi(argv[2]);
    if (strcmp(cmd, "wait") == 0 && argc == 4) {
        time_t end = time(NULL) + atoi(argv[3]);
        while (time(NULL) < end) {
            amqp_connection_state_t c = open_conn(port, 1);
            if (c) {
                close_conn(c);
                return 0;
            }
            usleep(250000);
        }
        fprintf(stderr, "no broker on 127.0.0.1:%d after %s s\n", port, argv[3]);
        return 1;
    }
    amqp_connection_state_t c = open_conn(port, 0);
    if (c == NULL)
        return 1;
    int rc = 0;
    if (strcmp(cmd, "declare") == 0 && argc == 6) {
        amqp_exchange_declare(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes("direct"), 0, 1,
                              0, 0, amqp_empty_table);
        if (!ok(amqp_get_rpc_reply(c), "exchange.declare"))
            return 1;
        amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[4]), 0, 1, 0, 0, amqp_empty_table);
        if (!ok(amqp_get_rpc_reply(c), "queue.declare"))
            return 1;
        amqp_queue_bind(c, 1, amqp_cstring_bytes(argv[4]), amqp_cstring_bytes(argv[3]),
                        amqp_cstring_bytes(argv[5]), amqp_empty_table);
        if (!ok(amqp_get_rpc_reply(c), "queue.bind"))
            return 1;
    } else if (strcmp(cmd, "queue") == 0 && argc == 4) {
        amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[3]), 0, 1, 0, 0, amqp_empty_table);
        if (!ok(amqp_get_rpc_reply(c), "queue.declare"))
            return 1;
    } else if (strcmp(cmd, "count") == 0 && argc == 4) {
        amqp_queue_declare_ok_t *q =
            amqp_queue_declare(c, 1, amqp_cstring_bytes(argv[3]), 1, 0, 0, 0, amqp_empty_table);
        if (!ok(amqp_get_rpc_reply(c), "queue.declare (passive)") || q == NULL)
            return 1;
        printf("%u\n", q->message_count);
    } else if (strcmp(cmd, "publish") == 0 && (argc == 6 || argc == 7)) {
        size_t len = 0;
        char *body = slurp(argv[5], &len);
        if (body == NULL) {
            perror(argv[5]);
            return 1;
        }
        amqp_confirm_select(c, 1);
        if (!ok(amqp_get_rpc_reply(c), "confirm.select"))
            return 1;
        amqp_basic_properties_t p;
        memset(&p, 0, sizeof(p));
        p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
        p.content_type = amqp_cstring_bytes("application/xml");
        p.delivery_mode = 2;
        if (argc == 7) {
            p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
            p.message_id = amqp_cstring_bytes(argv[6]);
        }
        amqp_bytes_t b = {len, body};
        if (amqp_basic_publish(c, 1, amqp_cstring_bytes(argv[3]), amqp_cstring_bytes(argv[4]), 1, 0,
                               &p, b) != AMQP_STATUS_OK) {
            fprintf(stderr, "publish failed\n");
            return 1;
        }
        /* Wait for the ack (a basic.return before it means unroutable). */
        struct timeval tv = {10, 0};
        for (;;) {
            amqp_frame_t f;
            if (amqp_simple_wait_frame_noblock(c, &f, &tv) != AMQP_STATUS_OK) {
                fprintf(stderr, "no confirm\n");
                return 1;
            }
            if (f.frame_type != AMQP_FRAME_METHOD)
                continue;
            if (f.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
                fprintf(stderr, "unroutable\n");
                rc = 1;
                amqp_message_t m;
                if (amqp_read_message(c, 1, &m, 0).reply_type == AMQP_RESPONSE_NORMAL)
                    amqp_destroy_message(&m);
                continue;
            }
            if (f.payload.method.id == AMQP_BASIC_ACK_METHOD)
                break;
            if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
                fprintf(stderr, "nack\n");
                return 1;
            }
        }
        free(body);
    } else if (strcmp(cmd, "get") == 0 && argc == 5) {
        amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes(argv[3]), 1);
        if (!ok(r, "basic.get"))
            return 1;
        if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) {
            close_conn(c);
            return 3;
        }
        amqp_message_t m;
        if (!ok(amqp_read_message(c, 1, &m, 0), "read message"))
            return 1;
        FILE *f = fopen(argv[4], "wb");
        if (f == NULL || fwrite(m.body.bytes, 1, m.body.len, f) != m.body.len) {
            perror(argv[4]);
            return 1;
        }
        fclose(f);
        amqp_basic_properties_t *p = &m.properties;
        printf("%.*s\t%.*s\t%u\n",
               (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? (int)p->message_id.len : 0,
               (p->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? (char *)p->message_id.bytes : "",
               (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? (int)p->content_type.len : 0,
               (p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? (char *)p->content_type.bytes : "",
               (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? p->delivery_mode : 0);
        amqp_destroy_message(&m);
    } else {
        fprintf(stderr, "unknown command or wrong arguments: %s\n", cmd);
        rc = 2;
    }
    close_conn(c);
    return rc;
}
