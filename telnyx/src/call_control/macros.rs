//! The two macros that declare command bodies (an `Action` impl plus `new`), shared by
//! `requests.rs` and `media.rs`.

/// Declares an action body whose only required field is `command_id`, with `new(id)`.
macro_rules! simple_action {
    ($(#[$m:meta])* $name:ident, $kind:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Serialize)]
        pub struct $name {
            pub command_id: CommandId,
            #[serde(skip_serializing_if = "Option::is_none")]
            pub client_state: Option<String>,
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $name {
            pub fn new(id: CommandId) -> Self {
                Self { command_id: id, client_state: None, $($field: Default::default(),)* }
            }
        }

        impl Action for $name {
            const KIND: CommandKind = CommandKind::$kind;
            fn command_id(&self) -> &CommandId {
                &self.command_id
            }
        }
    };
}

/// Declares an action body with required fields besides `command_id`.
macro_rules! action {
    ($name:ident, $kind:ident) => {
        impl Action for $name {
            const KIND: CommandKind = CommandKind::$kind;
            fn command_id(&self) -> &CommandId {
                &self.command_id
            }
        }
    };
}
