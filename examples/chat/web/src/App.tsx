import { FormEvent, useEffect, useRef, useState } from "react";
import { useMutation, usePaginatedQuery, useQuery } from "convex/react";
import { api } from "../../functions/_generated/api";
import type { Doc } from "../../functions/_generated/dataModel";

/** A message as messages:list and messages:search return it. */
export type ShownMessage = Doc<"messages"> & {
  likes: number;
  likers: string[];
  url?: string | null;
};

const PAGE_SIZE = 10;

function initialName(): string {
  const saved = sessionStorage.getItem("chat-name");
  if (saved) return saved;
  const name = `User ${Math.floor(Math.random() * 10000)}`;
  sessionStorage.setItem("chat-name", name);
  return name;
}

export function App() {
  const [name, setName] = useState(initialName);
  useEffect(() => sessionStorage.setItem("chat-name", name), [name]);
  return (
    <main>
      <header>
        <h1>Chat</h1>
        <label>
          Your name{" "}
          <input data-testid="name" value={name} onChange={(e) => setName(e.target.value)} />
        </label>
      </header>
      <div className="columns">
        <section className="chat">
          <History name={name} />
          <Composer name={name} />
        </section>
        <Search name={name} />
      </div>
    </main>
  );
}

/** The conversation, newest at the bottom; scrolling up loads older pages. */
function History({ name }: { name: string }) {
  const { results, status, loadMore } = usePaginatedQuery(
    api.messages.list,
    {},
    { initialNumItems: PAGE_SIZE },
  );
  const scroller = useRef<HTMLDivElement>(null);
  const sentinel = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const target = sentinel.current;
    if (!target || status !== "CanLoadMore") return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) loadMore(PAGE_SIZE);
      },
      { root: scroller.current },
    );
    observer.observe(target);
    return () => observer.disconnect();
  }, [status, loadMore]);
  return (
    <div className="history" ref={scroller} data-testid="history">
      {(results as ShownMessage[]).map((m) => (
        <Message key={m._id} message={m} name={name} />
      ))}
      <div ref={sentinel} className="sentinel" data-testid="history-status">
        {status === "Exhausted" ? "The beginning of the chat" : "Loading older messages…"}
      </div>
    </div>
  );
}

function Message({ message, name }: { message: ShownMessage; name: string }) {
  const like = useMutation(api.messages.like);
  const mine = message.likers.includes(name);
  return (
    <article className="message" data-testid="message" data-author={message.author}>
      <div className="author">{message.author}</div>
      {message.format === "image" ? (
        message.url ? (
          <img data-testid="message-image" src={message.url} alt="an uploaded image" />
        ) : (
          <em>(image missing)</em>
        )
      ) : (
        <div className="body" data-testid="message-body">
          {message.body}
        </div>
      )}
      <button
        className={mine ? "like liked" : "like"}
        data-testid="like"
        title={message.likers.join(", ") || "no likes yet"}
        onClick={() => void like({ messageId: message._id, liker: name })}
      >
        ♥ <span data-testid="like-count">{message.likes}</span>
      </button>
    </article>
  );
}

/** A text box, Send, and an image picker (uploaded through file storage). */
function Composer({ name }: { name: string }) {
  const [text, setText] = useState("");
  const send = useMutation(api.messages.send);
  const generateUploadUrl = useMutation(api.messages.generate_upload_url);
  const sendImage = useMutation(api.messages.send_image);
  const [error, setError] = useState<string | null>(null);

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (!text.trim()) return;
    setText("");
    await send({ body: text, author: name });
  }

  async function onImage(file: File) {
    setError(null);
    const postUrl = await generateUploadUrl();
    const answer = await fetch(postUrl, {
      method: "POST",
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: file,
    });
    if (!answer.ok) {
      setError(`upload failed: ${answer.status}`);
      return;
    }
    const { storageId } = await answer.json();
    await sendImage({ storageId, author: name });
  }

  return (
    <form className="composer" onSubmit={(e) => void onSubmit(e)}>
      <input
        data-testid="compose"
        value={text}
        placeholder="Write a message (mention @assistant for a reply)"
        onChange={(e) => setText(e.target.value)}
      />
      <button type="submit" data-testid="send" disabled={!text.trim()}>
        Send
      </button>
      <label className="image-picker">
        Image
        <input
          type="file"
          accept="image/*"
          data-testid="image-input"
          onChange={(e) => {
            const file = e.target.files?.[0];
            e.target.value = "";
            if (file) void onImage(file);
          }}
        />
      </label>
      {error && <span className="error">{error}</span>}
    </form>
  );
}

/** Full-text search over message bodies, live as new messages arrive. */
function Search({ name }: { name: string }) {
  const [text, setText] = useState("");
  const found = useQuery(api.messages.search, { text }) as ShownMessage[] | undefined;
  return (
    <aside className="search">
      <input
        data-testid="search"
        placeholder="Search messages"
        value={text}
        onChange={(e) => setText(e.target.value)}
      />
      <div data-testid="search-results">
        {text.trim() && found?.length === 0 && <p>No messages match.</p>}
        {found?.map((m) => (
          <Message key={m._id} message={m} name={name} />
        ))}
      </div>
    </aside>
  );
}
