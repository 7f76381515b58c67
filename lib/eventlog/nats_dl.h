/*
 * nats_dl.h — libnats, loaded when the JetStream backend is first opened.
 *
 * Linking libnats would load it, and through it OpenSSL and protobuf-c, into every
 * program that can open an event log — the `tabbify` CLI included, where it tripled
 * start-up time for commands that never touch NATS. So the distributed backend reaches
 * libnats through this table of function pointers, filled by dlopen/dlsym the first time
 * it is needed; programs on the embedded default never load it. Each pointer has the
 * exact type of the function it stands for (__typeof__ of nats.h's declaration), so the
 * compiler checks every call as before.
 */
#ifndef TB_NATS_DL_H
#define TB_NATS_DL_H

#include <nats/nats.h>

#include "tb/err.h"

/* Every libnats function the backend calls. */
#define TB__NATS_SYMBOLS(X) \
  X(jsCtx_Destroy) \
  X(jsFetchRequest_Init) \
  X(jsMsgMetaData_Destroy) \
  X(jsOptions_Init) \
  X(jsStreamConfig_Init) \
  X(jsStreamInfo_Destroy) \
  X(jsSubOptions_Init) \
  X(js_AddStream) \
  X(js_CreateKeyValue) \
  X(js_GetMsg) \
  X(js_GetStreamInfo) \
  X(js_KeyValue) \
  X(js_PullSubscribe) \
  X(kvConfig_Init) \
  X(kvEntry_Destroy) \
  X(kvEntry_ValueString) \
  X(kvStore_Delete) \
  X(kvStore_Destroy) \
  X(kvStore_Get) \
  X(kvStore_PutString) \
  X(natsConnection_Close) \
  X(natsConnection_Connect) \
  X(natsConnection_Destroy) \
  X(natsConnection_JetStream) \
  X(natsConnection_PublishMsg) \
  X(natsConnection_Subscribe) \
  X(natsInbox_Create) \
  X(natsInbox_Destroy) \
  X(natsMsgHeader_Get) \
  X(natsMsgHeader_Set) \
  X(natsMsgList_Destroy) \
  X(natsMsg_Create) \
  X(natsMsg_Destroy) \
  X(natsMsg_GetData) \
  X(natsMsg_GetDataLength) \
  X(natsMsg_GetMetaData) \
  X(natsMsg_GetSubject) \
  X(natsMsg_IsNoResponders) \
  X(natsOptions_Create) \
  X(natsOptions_Destroy) \
  X(natsOptions_SetMaxPingsOut) \
  X(natsOptions_SetMaxReconnect) \
  X(natsOptions_SetPingInterval) \
  X(natsOptions_SetReconnectBufSize) \
  X(natsOptions_SetReconnectJitter) \
  X(natsOptions_SetReconnectWait) \
  X(natsOptions_SetTimeout) \
  X(natsOptions_SetURL) \
  X(natsStatus_GetText) \
  X(natsSubscription_Destroy) \
  X(natsSubscription_FetchRequest) \
  X(natsSubscription_SetPendingLimits) \
  X(natsSubscription_Unsubscribe) \
  X(nats_GetLastError) \

typedef struct tb__nats_api {
#define TB__NATS_PTR_(name) __typeof__(name) *name;
  TB__NATS_SYMBOLS(TB__NATS_PTR_)
#undef TB__NATS_PTR_
} tb__nats_api_t;

/** The loaded functions; valid after tb__nats_load() returned 0. */
extern tb__nats_api_t tb__nats;

/**
 * Loads libnats once per process (thread-safe). Returns 0, or TB_ENOTSUP with a sentence
 * in `eb` naming the library and why it could not be loaded.
 */
int tb__nats_load(tb_errbuf_t *eb);

#endif /* TB_NATS_DL_H */
